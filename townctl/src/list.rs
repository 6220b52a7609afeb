//! The registry's listings, every page of each.

use std::future::Future;

use tonic::Status;
use township_proto::registry::v1 as pb;

use crate::client::{Registry, call_error};

/// Every item of a paged listing: `page(client, token)` fetches one page (its items and the next token) until
/// the token comes back empty. A failure names `what` was being listed.
async fn all_pages<T, Fut>(
    registry: &Registry,
    what: String,
    mut page: impl FnMut(Registry, String) -> Fut,
) -> anyhow::Result<Vec<T>>
where
    Fut: Future<Output = Result<(Vec<T>, String), Status>>,
{
    let mut items = Vec::new();
    let mut token = String::new();
    loop {
        let (mut more, next) = page(registry.clone(), token).await.map_err(call_error(format!("listing {what}")))?;
        items.append(&mut more);
        if next.is_empty() {
            return Ok(items);
        }
        token = next;
    }
}

pub(crate) async fn cities(registry: &Registry) -> anyhow::Result<Vec<pb::City>> {
    all_pages(registry, "the cities".to_owned(), |mut registry, page_token| async move {
        let page = registry.list_cities(pb::ListCitiesRequest { page_size: 1000, page_token }).await?.into_inner();
        Ok((page.cities, page.next_page_token))
    })
    .await
}

pub(crate) async fn counties(registry: &Registry, city: &str) -> anyhow::Result<Vec<pb::County>> {
    all_pages(registry, format!("the counties of {city}"), |mut registry, page_token| async move {
        let request = pb::ListCountiesRequest { parent: city.to_owned(), page_size: 1000, page_token };
        let page = registry.list_counties(request).await?.into_inner();
        Ok((page.counties, page.next_page_token))
    })
    .await
}

/// A city's or county's townships.
pub(crate) async fn townships(registry: &Registry, parent: &str) -> anyhow::Result<Vec<pb::Township>> {
    all_pages(registry, format!("the townships of {parent}"), |mut registry, page_token| async move {
        let request = pb::ListTownshipsRequest { parent: parent.to_owned(), page_size: 1000, page_token };
        let page = registry.list_townships(request).await?.into_inner();
        Ok((page.townships, page.next_page_token))
    })
    .await
}

pub(crate) async fn institutions(registry: &Registry, township: &str) -> anyhow::Result<Vec<pb::Institution>> {
    all_pages(registry, format!("the institutions of {township}"), |mut registry, page_token| async move {
        let request = pb::ListInstitutionsRequest { parent: township.to_owned(), page_size: 1000, page_token };
        let page = registry.list_institutions(request).await?.into_inner();
        Ok((page.institutions, page.next_page_token))
    })
    .await
}

/// The staffing approvals of a township's institutions (or of one institution), in the order recorded.
pub(crate) async fn staffing_approvals(registry: &Registry, parent: &str) -> anyhow::Result<Vec<pb::StaffingApproval>> {
    all_pages(registry, format!("the staffing approvals of {parent}"), |mut registry, page_token| async move {
        let request = pb::ListStaffingApprovalsRequest { parent: parent.to_owned(), page_size: 1000, page_token };
        let page = registry.list_staffing_approvals(request).await?.into_inner();
        Ok((page.staffing_approvals, page.next_page_token))
    })
    .await
}

/// The actual headcounts of a township's institutions (or of one institution), in the order first set.
pub(crate) async fn staffing_headcounts(
    registry: &Registry,
    parent: &str,
) -> anyhow::Result<Vec<pb::StaffingHeadcount>> {
    all_pages(registry, format!("the staffing headcounts of {parent}"), |mut registry, page_token| async move {
        let request = pb::ListStaffingHeadcountsRequest { parent: parent.to_owned(), page_size: 1000, page_token };
        let page = registry.list_staffing_headcounts(request).await?.into_inner();
        Ok((page.staffing_headcounts, page.next_page_token))
    })
    .await
}

pub(crate) async fn posts(registry: &Registry, township: &str) -> anyhow::Result<Vec<pb::LeadershipPost>> {
    all_pages(registry, format!("the posts of {township}"), |mut registry, page_token| async move {
        let request = pb::ListLeadershipPostsRequest { parent: township.to_owned(), page_size: 1000, page_token };
        let page = registry.list_leadership_posts(request).await?.into_inner();
        Ok((page.posts, page.next_page_token))
    })
    .await
}

/// A county's template, or a township's effective catalogue (inherited items marked).
pub(crate) async fn catalogue(registry: &Registry, owner: &str) -> anyhow::Result<Vec<pb::CatalogueItem>> {
    all_pages(registry, format!("the catalogue of {owner}"), |mut registry, page_token| async move {
        let request = pb::ListCatalogueItemsRequest {
            parent: owner.to_owned(),
            page_size: 1000,
            page_token,
            ..Default::default()
        };
        let page = registry.list_catalogue_items(request).await?.into_inner();
        Ok((page.catalogue_items, page.next_page_token))
    })
    .await
}

/// Every class of a city's or county's townships (`data_year` 0: the city's current year; none when it has
/// none), by rank.
pub(crate) async fn classes(
    registry: &Registry,
    parent: &str,
    data_year: i32,
) -> anyhow::Result<Vec<pb::TownshipClass>> {
    let mut classes = all_pages(registry, format!("the classes of {parent}"), |mut registry, page_token| async move {
        let request =
            pb::ListTownshipClassesRequest { parent: parent.to_owned(), data_year, page_size: 1000, page_token };
        let page = registry.list_township_classes(request).await?.into_inner();
        Ok((page.classes, page.next_page_token))
    })
    .await?;
    classes.sort_by_key(|class| class.rank);
    Ok(classes)
}
