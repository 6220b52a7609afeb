//! A city's data years as the registry reports them (`ListDataYears`), worded for people: the coverage and state
//! of a year, and what to do when the city has no current year (no official classes) yet.

use township_proto::registry::v1 as pb;

use crate::client::{Registry, call_error};

/// A city's data years, newest first, and its current year (0: none).
pub(crate) async fn data_years(registry: &Registry, city: &str) -> anyhow::Result<(Vec<pb::DataYear>, i32)> {
    let mut years = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = pb::ListDataYearsRequest { parent: city.to_owned(), page_size: 1000, page_token };
        let page = registry
            .clone()
            .list_data_years(request)
            .await
            .map_err(call_error(format!("listing the data years of {city}")))?
            .into_inner();
        years.extend(page.years);
        if page.next_page_token.is_empty() {
            return Ok((years, page.current_year));
        }
        page_token = page.next_page_token;
    }
}

/// The state as a word: current, adopted, complete, provisional.
pub(crate) fn state_word(state: i32) -> &'static str {
    match pb::DataYearState::try_from(state) {
        Ok(pb::DataYearState::Current) => "current",
        Ok(pb::DataYearState::Adopted) => "adopted",
        Ok(pb::DataYearState::Complete) => "complete",
        Ok(pb::DataYearState::Provisional) => "provisional",
        _ => "unknown",
    }
}

/// "2024: 2 of 172 townships, provisional".
pub(crate) fn coverage(data_year: i32, with_data: u32, in_force: u32, state: &str) -> String {
    format!("{data_year}: {with_data} of {in_force} townships, {state}")
}

/// How a city administrator makes a partial year the current one: the registry's `AdoptDataYear`, as a command
/// to run (townctl has none: adopting is a city's decision with its 文号, not an import's side effect).
pub(crate) fn adopt_hint(registry_url: &str, city: &str, data_year: i32) -> String {
    let plaintext = if registry_url.starts_with("http://") { " --http2-prior-knowledge" } else { "" };
    format!(
        "A city administrator adopts a partial year as the city's current year with its approving document (文号) \
         through the registry's AdoptDataYear:\n  buf curl --protocol grpc{plaintext} -d '{{\"parent\": \"{city}\", \
         \"data_year\": {data_year}, \"document_number\": \"…〔YYYY〕N号\", \"adopted_on\": \"YYYY-MM-DD\", \
         \"reason\": \"…\"}}' {}/township.registry.v1.RegistryService/AdoptDataYear\n",
        registry_url.trim_end_matches('/')
    )
}

/// What a class view says when the city has no current year: the years there are, with their coverage, and how
/// to see one or make one current.
pub(crate) async fn no_current_year(registry: &Registry, registry_url: &str, city: &str) -> anyhow::Result<String> {
    let (years, _) = data_years(registry, city).await?;
    let Some(latest) = years.first() else {
        return Ok(format!(
            "{city} has no official classes: it has no indicators yet. Import them with `townctl import indicators`.\n"
        ));
    };
    let mut text = format!(
        "{city} has no current year yet, so no official classes: no data year covers every township in force, \
         and none was adopted. Its data years:\n"
    );
    for year in &years {
        text.push_str(&format!(
            "  {}\n",
            coverage(year.data_year, year.townships_with_data, year.townships_in_force, state_word(year.state))
        ));
    }
    text.push_str(&format!(
        "Show a year's live classes with --data-year {} (not official), import the missing townships' indicators, \
         or adopt the year.\n",
        latest.data_year
    ));
    text.push_str(&adopt_hint(registry_url, city, latest.data_year));
    Ok(text)
}
