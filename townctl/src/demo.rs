//! The demo `townctl up` loads on first start: Hunan's 14 cities, 134 counties and 2,008 township-level units
//! (the NBS division files shipped in `fixtures/`), generated indicators, institutions, posts and county
//! catalogue templates, with a seeded share of deliberate breaches so that the compliance report has something
//! to say. Every value comes from a ChaCha stream seeded by `--seed` and the township's code: the same seed
//! gives the same province, whatever the order of the calls.

use anyhow::Context;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use township_proto::classifier::v1::TownshipKind;
use township_proto::registry::v1 as pb;

use crate::client::{Registry, call_error, with_request_id};
use crate::list;

pub(crate) const CITIES_CSV: &str = include_str!("../../fixtures/divisions/hunan/cities.csv");
pub(crate) const COUNTIES_CSV: &str = include_str!("../../fixtures/divisions/hunan/areas.csv");
pub(crate) const TOWNSHIPS_CSV: &str = include_str!("../../fixtures/divisions/hunan/streets.csv");
/// Hunan's province code: every division in the files above.
pub(crate) const PROVINCE_PREFIX: &str = "43";
/// The year of the division codes (NBS 2023), used as the data year of the generated indicators.
pub(crate) const DATA_YEAR: i32 = 2023;

/// A random stream for one township, independent of every other township's.
fn stream(seed: u64, code: &str, purpose: u64) -> ChaCha8Rng {
    let code: u64 = code.parse().unwrap_or(0);
    ChaCha8Rng::seed_from_u64(seed ^ code.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ purpose.rotate_left(32))
}

/// The seeded sample indicators the tests and benchmarks also use, in the ranges SOURCE.md gives for Hunan.
pub(crate) use township_registry::sample::indicators;

fn kind_of(township: &pb::Township) -> TownshipKind {
    TownshipKind::try_from(township.kind).unwrap_or(TownshipKind::Unspecified)
}

/// The offices the policy mandates (section 三(一)); a seeded few townships lack one or keep a sixth.
const OFFICES: [&str; 5] =
    ["党政办公室", "经济发展办公室", "社会事务办公室", "自然资源和生态环境办公室", "社会治安和应急管理办公室"];

pub(crate) fn institutions(seed: u64, township: &pb::Township) -> Vec<pb::CreateInstitutionRequest> {
    let mut rng = stream(seed, &township.code, 2);
    let subdistrict = kind_of(township) == TownshipKind::Subdistrict;
    let mut wanted: Vec<(pb::InstitutionKind, &str, u32)> = Vec::new();
    let missing_office = rng.random_bool(0.04).then(|| rng.random_range(1..OFFICES.len()));
    for (index, office) in OFFICES.iter().enumerate() {
        if Some(index) != missing_office {
            wanted.push((pb::InstitutionKind::PartyGovernmentOffice, office, rng.random_range(4..9)));
        }
    }
    if rng.random_bool(0.12) {
        wanted.push((pb::InstitutionKind::PartyGovernmentOffice, "党建工作办公室", 4));
    }
    let centres: [&str; 3] = if subdistrict {
        ["党群服务中心", "政务服务中心", "社区治理服务中心"]
    } else {
        ["党群服务中心", "政务服务中心", "农业综合服务中心"]
    };
    for centre in centres {
        wanted.push((pb::InstitutionKind::PublicInstitution, centre, rng.random_range(3..12)));
    }
    if !rng.random_bool(0.05) {
        wanted.push((pb::InstitutionKind::LawEnforcementUnit, "综合行政执法大队", rng.random_range(6..15)));
    }
    let document = format!("湘编办发〔2024〕{}号", 10 + rng.random_range(0..90));
    wanted
        .into_iter()
        .map(|(kind, name, quota)| pb::CreateInstitutionRequest {
            parent: township.name.clone(),
            institution: Some(pb::Institution {
                kind: kind as i32,
                display_name: name.to_owned(),
                staffing_quota: quota,
                approving_document: document.clone(),
                valid_from: "2024-01-01".to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect()
}

pub(crate) fn posts(seed: u64, township: &pb::Township) -> Vec<pb::CreateLeadershipPostRequest> {
    let mut rng = stream(seed, &township.code, 3);
    let head = match kind_of(township) {
        TownshipKind::Subdistrict => "街道办事处主任",
        TownshipKind::Town => "镇长",
        _ => "乡长",
    };
    use pb::MandatedRole as M;
    let mut posts = vec![
        ("党委书记", M::Unspecified),
        (head, M::Unspecified),
        ("党委副书记（抓党建）", M::PartyBuildingDeputySecretary),
        ("纪委书记", if rng.random_bool(0.03) { M::Unspecified } else { M::DisciplineInspectionSecretary }),
        ("组织委员", M::OrganisationCommitteeMember),
        ("人大主席", M::Unspecified),
        ("宣传委员", M::Unspecified),
        ("武装部长", M::Unspecified),
    ];
    // 8 posts, plus deputies for some: class 3 allows 9 and class 2 allows 11, so a township with several
    // deputies that comes out in class 3 keeps more posts than it may.
    let roll: f64 = rng.random();
    let deputies = if roll < 0.6 {
        0
    } else if roll < 0.85 {
        1
    } else if roll < 0.95 {
        2
    } else {
        4
    };
    posts.extend(std::iter::repeat_n(("副镇长（副主任）", M::Unspecified), deputies));
    posts
        .into_iter()
        .map(|(role, mandated)| pb::CreateLeadershipPostRequest {
            parent: township.name.clone(),
            post: Some(pb::LeadershipPost {
                role: role.to_owned(),
                mandated_role: mandated as i32,
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect()
}

/// A county's template: one item per duty area, each naming the office responsible by title. Every tenth
/// county leaves 提升城镇管理水平 out, and every seventeenth names a station its townships do not have.
pub(crate) fn county_template(county: &pb::County, index: usize) -> Vec<pb::CreateCatalogueItemRequest> {
    use pb::DutyArea as A;
    let areas = [
        (A::PartyBuilding, "DJ", "基层党组织建设指导", "党政办"),
        (A::EconomicDevelopment, "JJ", "招商引资项目服务", "经济发展"),
        (A::PublicService, "GG", "城乡居民养老保险参保登记", "政务服务中心"),
        (A::SocialGovernance, "ZL", "矛盾纠纷排查调处", "社会治安"),
        (A::TownManagement, "CZ", "农村村民住宅建设审批", "自然资源"),
        (A::GrassrootsDemocracy, "MZ", "村（居）民委员会换届选举指导", "党政办"),
        (A::ServeEconomicDevelopment, "FW", "辖区企业服务", "经济发展"),
        (A::OrganisePublicService, "ZZ", "最低生活保障申请受理", "政务服务中心"),
        (A::PublicManagement, "GL", "市容环境卫生管理", "综合行政执法"),
        (A::SuperviseLawEnforcement, "JD", "违法建设巡查报告", "综合行政执法"),
        (A::MobiliseSocialParticipation, "DY", "志愿服务组织动员", "党群服务中心"),
        (A::GuideGrassrootsAutonomy, "ZZ2", "社区居民自治指导", "社会事务"),
        (A::MaintainPublicSafety, "AQ", "安全生产检查", "社会治安"),
    ];
    areas
        .into_iter()
        .filter(|(area, ..)| !(index % 10 == 3 && *area == A::TownManagement))
        .enumerate()
        .map(|(number, (area, prefix, title, office))| {
            let office = if index % 17 == 5 && area == A::PublicService { "农村经营管理站" } else { office };
            let (item_type, details) = match number % 3 {
                0 => (
                    pb::CatalogueItemType::Power,
                    pb::catalogue_item::Details::Power(pb::PowerDetails {
                        category: pb::PowerCategory::Confirmation as i32,
                        legal_basis: "《湖南省乡镇权力清单（2024年版）》".to_owned(),
                        origin: pb::PowerOrigin::Devolved as i32,
                    }),
                ),
                1 => (
                    pb::CatalogueItemType::Responsibility,
                    pb::catalogue_item::Details::Responsibility(pb::ResponsibilityDetails {
                        power_item_code: String::new(),
                        duties: format!("负责{title}，按月报告县级主管部门"),
                        accountability_cases: "未按规定履职造成不良后果的".to_owned(),
                    }),
                ),
                _ => (
                    pb::CatalogueItemType::PublicService,
                    pb::catalogue_item::Details::PublicService(pb::PublicServiceDetails {
                        service_domain: "便民服务".to_owned(),
                        handling_mode: pb::HandlingMode::Direct as i32,
                    }),
                ),
            };
            pb::CreateCatalogueItemRequest {
                parent: county.name.clone(),
                catalogue_item: Some(pb::CatalogueItem {
                    item_type: item_type as i32,
                    code: format!("{prefix}-{:03}", number + 1),
                    title: title.to_owned(),
                    duty_area: area as i32,
                    responsible_institution_title: office.to_owned(),
                    details: Some(details),
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
        .collect()
}

/// Loads the whole demo: each city's records in one all-or-nothing batch per kind.
pub(crate) async fn load(registry: &mut Registry, seed: u64, progress: &indicatif::ProgressBar) -> anyhow::Result<()> {
    registry
        .import_divisions(pb::ImportDivisionsRequest {
            cities_csv: CITIES_CSV.to_owned(),
            counties_csv: COUNTIES_CSV.to_owned(),
            townships_csv: TOWNSHIPS_CSV.to_owned(),
            code_prefix: PROVINCE_PREFIX.to_owned(),
            validate_only: false,
        })
        .await
        .map_err(call_error("importing Hunan's divisions"))?;
    let cities = list::cities(registry).await?;
    progress.set_length(cities.len() as u64);
    let mut county_index = 0;
    for city in &cities {
        progress.set_message(city.display_name.clone());
        let townships = list::townships(registry, &city.name).await?;
        let requests = townships.iter().flat_map(|t| institutions(seed, t)).collect();
        registry
            .batch_create_institutions(with_request_id(
                pb::BatchCreateInstitutionsRequest { requests, ..Default::default() },
                |r| &mut r.request_id,
            ))
            .await
            .map_err(call_error(format!("creating the institutions of {}", city.display_name)))?;
        let requests = townships.iter().flat_map(|t| posts(seed, t)).collect();
        registry
            .batch_create_leadership_posts(with_request_id(
                pb::BatchCreateLeadershipPostsRequest { requests, ..Default::default() },
                |r| &mut r.request_id,
            ))
            .await
            .map_err(call_error(format!("creating the leadership posts of {}", city.display_name)))?;
        let mut requests = Vec::new();
        for county in list::counties(registry, &city.name).await? {
            requests.extend(county_template(&county, county_index));
            county_index += 1;
        }
        registry
            .batch_create_catalogue_items(with_request_id(
                pb::BatchCreateCatalogueItemsRequest { requests, ..Default::default() },
                |r| &mut r.request_id,
            ))
            .await
            .map_err(call_error(format!("creating the catalogue templates of {}", city.display_name)))
            .context("loading the demo")?;
        // Last: the institutions and posts predate the classification, so a township that comes out in class 3
        // may keep the sixth office or the posts class 3 no longer allows, as after a real reform.
        let observations = townships
            .iter()
            .map(|township| pb::IndicatorObservation {
                township: township.name.clone(),
                data_year: DATA_YEAR,
                values: Some(indicators(seed, &township.code, kind_of(township))),
                source: format!("townctl up demo: generated, seed {seed}"),
                ..Default::default()
            })
            .collect();
        registry
            .batch_record_indicators(with_request_id(
                pb::BatchRecordIndicatorsRequest { observations, ..Default::default() },
                |r| &mut r.request_id,
            ))
            .await
            .map_err(call_error(format!("recording the indicators of {}", city.display_name)))?;
        progress.inc(1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_divisions_are_hunans_1947_townships_and_more() {
        assert_eq!(CITIES_CSV.lines().count() - 1, 14);
        // 1,947 townships plus 61 development zones and farms (SOURCE.md).
        assert_eq!(TOWNSHIPS_CSV.lines().count() - 1, 1947 + 61);
    }
}
