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

/// The policy's 社会事务综合服务中心(文化综合服务站), as towns and 街道 alike name it.
const SOCIAL_AFFAIRS_CENTRE: &str = "社会事务综合服务中心(文化综合服务站)";

pub(crate) fn institutions(seed: u64, township: &pb::Township) -> Vec<pb::CreateInstitutionRequest> {
    let mut rng = stream(seed, &township.code, 2);
    let subdistrict = kind_of(township) == TownshipKind::Subdistrict;
    let mut wanted: Vec<(pb::InstitutionKind, &str, u32)> = Vec::new();
    let missing_office = rng.random_bool(0.04).then(|| rng.random_range(1..OFFICES.len()));
    for (index, office) in OFFICES.iter().enumerate() {
        if Some(index) != missing_office {
            // 3–4 each: six offices stay within the smallest class's inferred 行政编制 norm (25).
            wanted.push((pb::InstitutionKind::PartyGovernmentOffice, office, rng.random_range(3..5)));
        }
    }
    if rng.random_bool(0.12) {
        wanted.push((pb::InstitutionKind::PartyGovernmentOffice, "党建工作办公室", 3));
    }
    // The directly-affiliated public institutions the policy names (`public_institutions.mandated`): a 乡镇 has
    // all three, a 街道 no agriculture centre but a community-governance one in its place.
    let centres: [&str; 3] = if subdistrict {
        [SOCIAL_AFFAIRS_CENTRE, "政务服务中心", "社区治理服务中心"]
    } else {
        [SOCIAL_AFFAIRS_CENTRE, "政务服务中心", "农业综合服务中心"]
    };
    for centre in centres {
        // Three centres and the brigade stay within the smallest class's inferred 事业编制 norm (30).
        wanted.push((pb::InstitutionKind::PublicInstitution, centre, rng.random_range(3..8)));
    }
    if !rng.random_bool(0.05) {
        wanted.push((pb::InstitutionKind::LawEnforcementUnit, "综合行政执法大队", rng.random_range(4..9)));
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

/// A county's template: one item per duty area, each naming the office responsible by title, and after each
/// power item the responsibility item for exercising it (权责对应), linked by the power's code. Every tenth
/// county leaves 提升城镇管理水平 out, every seventeenth names a station its townships do not have, and a seeded
/// few (about one in twenty, drawn from the county's own stream) leave their powers without responsibility items.
pub(crate) fn county_template(seed: u64, county: &pb::County, index: usize) -> Vec<pb::CreateCatalogueItemRequest> {
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
        (A::MobiliseSocialParticipation, "DY", "志愿服务组织动员", "社会事务综合服务中心"),
        // 社会事务办 rather than 社会事务: the latter is also in 社会事务综合服务中心's name, which would stand in
        // for the 社会事务办公室 a seeded few townships lack.
        (A::GuideGrassrootsAutonomy, "ZZ2", "社区居民自治指导", "社会事务办"),
        (A::MaintainPublicSafety, "AQ", "安全生产检查", "社会治安"),
    ];
    let companions = !stream(seed, &county.code, 4).random_bool(0.05);
    let item = |area: A, code: String, title: String, office: &str, details| pb::CreateCatalogueItemRequest {
        parent: county.name.clone(),
        catalogue_item: Some(pb::CatalogueItem {
            item_type: match &details {
                pb::catalogue_item::Details::Power(_) => pb::CatalogueItemType::Power,
                pb::catalogue_item::Details::Responsibility(_) => pb::CatalogueItemType::Responsibility,
                pb::catalogue_item::Details::PublicService(_) => pb::CatalogueItemType::PublicService,
            } as i32,
            code,
            title,
            duty_area: area as i32,
            responsible_institution_title: office.to_owned(),
            details: Some(details),
            ..Default::default()
        }),
        ..Default::default()
    };
    let responsibility = |duties: String, power_item_code: String| {
        pb::catalogue_item::Details::Responsibility(pb::ResponsibilityDetails {
            power_item_code,
            duties,
            accountability_cases: "未按规定履职造成不良后果的".to_owned(),
        })
    };
    let mut items = Vec::new();
    let kept = areas.into_iter().filter(|(area, ..)| !(index % 10 == 3 && *area == A::TownManagement));
    for (number, (area, prefix, title, office)) in kept.enumerate() {
        let office = if index % 17 == 5 && area == A::PublicService { "农村经营管理站" } else { office };
        let code = format!("{prefix}-{:03}", number + 1);
        let details = match number % 3 {
            0 => pb::catalogue_item::Details::Power(pb::PowerDetails {
                category: pb::PowerCategory::Confirmation as i32,
                legal_basis: "《湖南省乡镇权力清单（2024年版）》".to_owned(),
                origin: pb::PowerOrigin::Devolved as i32,
            }),
            1 => responsibility(format!("负责{title}，按月报告县级主管部门"), String::new()),
            _ => pb::catalogue_item::Details::PublicService(pb::PublicServiceDetails {
                service_domain: "便民服务".to_owned(),
                handling_mode: pb::HandlingMode::Direct as i32,
            }),
        };
        let power = matches!(details, pb::catalogue_item::Details::Power(_));
        items.push(item(area, code.clone(), title.to_owned(), office, details));
        if power && companions {
            // Same area and office as its power, after it in the batch: the registry checks the link on write.
            let details = responsibility(format!("依法实施{title}，对实施过程和结果负责"), code.clone());
            items.push(item(area, format!("{code}-ZR"), format!("{title}（履职责任）"), office, details));
        }
    }
    items
}

/// The city whose own policy departs from the document (4 plaques per township, under its 文号), so that the
/// demo's reports show `policy.city_deviation`.
const CITY_WITH_OWN_POLICY: &str = "4303";
/// The county whose approved deviation allows its townships a sixth office (各县市区可以结合实际调整优化机构设置),
/// so that the demo's reports show approved exceptions.
const COUNTY_WITH_DEVIATION: &str = "430181";

/// 湘潭市's policy: the default with a fourth plaque per township.
async fn own_city_policy(registry: &mut Registry, city: &pb::City) -> anyhow::Result<()> {
    let mut policy = registry
        .get_effective_policy(pb::GetEffectivePolicyRequest { parent: city.name.clone() })
        .await
        .map_err(call_error(format!("reading the policy of {}", city.display_name)))?
        .into_inner()
        .policy
        .unwrap_or_default();
    policy.max_plaques_per_township = Some(4);
    policy.version = format!("{}+{}", policy.version, city.code);
    let request = pb::SetCityPolicyRequest {
        parent: city.name.clone(),
        policy: Some(policy),
        document_number: "潭编委发〔2024〕8号".to_owned(),
        ..Default::default()
    };
    registry
        .set_city_policy(with_request_id(request, |r| &mut r.request_id))
        .await
        .map_err(call_error(format!("setting the policy of {}", city.display_name)))?;
    Ok(())
}

/// 浏阳市's approval of a sixth office in each of its townships.
async fn office_deviation(registry: &mut Registry, county: &str) -> anyhow::Result<()> {
    let request = pb::CreateApprovedDeviationRequest {
        parent: county.to_owned(),
        approved_deviation: Some(pb::ApprovedDeviation {
            rule: "offices.count".to_owned(),
            allowed: 6,
            allowed_description: "保留党建工作办公室".to_owned(),
            document_number: "长编办发〔2024〕12号".to_owned(),
            approved_on: "2024-01-01".to_owned(),
            reason: "乡镇人口规模大、产业园区多".to_owned(),
            ..Default::default()
        }),
        ..Default::default()
    };
    registry
        .create_approved_deviation(with_request_id(request, |r| &mut r.request_id))
        .await
        .map_err(call_error(format!("approving the deviation of {county}")))?;
    Ok(())
}

/// The actual headcount of a public institution: at or a little under its approved staffing, and in a seeded
/// 3 % over it (超编, `staffing.institution_over_approved`).
fn headcount(seed: u64, institution: &pb::Institution) -> Option<pb::SetStaffingHeadcountRequest> {
    if institution.kind != pb::InstitutionKind::PublicInstitution as i32 || institution.staffing_quota == 0 {
        return None;
    }
    let id: u64 = institution.name.rsplit('/').next().and_then(|id| id.parse().ok()).unwrap_or(0);
    let mut rng = stream(seed ^ id, institution.name.split('/').nth(5).unwrap_or_default(), 7);
    let actual = if rng.random_bool(0.03) {
        institution.staffing_quota + rng.random_range(1..4)
    } else {
        institution.staffing_quota.saturating_sub(rng.random_range(0..2))
    };
    Some(pb::SetStaffingHeadcountRequest {
        parent: institution.name.clone(),
        staffing_type: pb::StaffingType::PublicInstitution as i32,
        actual_headcount: actual,
    })
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
        if city.code == CITY_WITH_OWN_POLICY {
            own_city_policy(registry, city).await?;
        }
        if let Some(county) = COUNTY_WITH_DEVIATION.strip_prefix(city.code.as_str()) {
            office_deviation(registry, &format!("{}/counties/{}{county}", city.name, city.code)).await?;
        }
        let requests = townships.iter().flat_map(|t| institutions(seed, t)).collect();
        let created = registry
            .batch_create_institutions(with_request_id(
                pb::BatchCreateInstitutionsRequest { requests, ..Default::default() },
                |r| &mut r.request_id,
            ))
            .await
            .map_err(call_error(format!("creating the institutions of {}", city.display_name)))?
            .into_inner()
            .institutions;
        let requests = created.iter().filter_map(|institution| headcount(seed, institution)).collect();
        registry
            .batch_set_staffing_headcounts(pb::BatchSetStaffingHeadcountsRequest { requests, validate_only: false })
            .await
            .map_err(call_error(format!("setting the headcounts of {}", city.display_name)))?;
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
            requests.extend(county_template(seed, &county, county_index));
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

    #[test]
    fn every_kind_of_township_gets_the_public_institutions_the_policy_names() {
        use township_registry::domain::model::TownshipKind as Kind;
        use township_registry::domain::rules::mandated_public_institutions;
        let kinds = [
            (TownshipKind::Town, Kind::Town),
            (TownshipKind::Township, Kind::Township),
            (TownshipKind::EthnicTownship, Kind::EthnicTownship),
            (TownshipKind::Subdistrict, Kind::Subdistrict),
            (TownshipKind::Other, Kind::Other),
        ];
        for (proto_kind, kind) in kinds {
            for code in ["430102001", "430181110", "433130203"] {
                let township = pb::Township {
                    name: format!("townships/{code}"),
                    code: code.to_owned(),
                    kind: proto_kind as i32,
                    ..Default::default()
                };
                let names: Vec<String> = institutions(2023, &township)
                    .into_iter()
                    .filter_map(|request| request.institution)
                    .filter(|i| i.kind == pb::InstitutionKind::PublicInstitution as i32)
                    .map(|i| i.display_name)
                    .collect();
                for (unit, name) in mandated_public_institutions(kind) {
                    assert!(names.iter().any(|n| unit.recognises(n)), "{kind:?} {code} lacks {name}: {names:?}");
                }
            }
        }
    }

    #[test]
    fn template_powers_come_with_their_responsibilities_but_in_a_seeded_few_counties() {
        let counties: Vec<pb::County> = COUNTIES_CSV
            .lines()
            .skip(1)
            .map(|line| {
                let code = line.split(',').next().unwrap().to_owned();
                pb::County { name: format!("counties/{code}"), code, ..Default::default() }
            })
            .collect();
        let mut without = 0;
        for (index, county) in counties.iter().enumerate() {
            let items: Vec<pb::CatalogueItem> =
                county_template(2023, county, index).into_iter().filter_map(|r| r.catalogue_item).collect();
            let powers: Vec<&pb::CatalogueItem> =
                items.iter().filter(|i| i.item_type == pb::CatalogueItemType::Power as i32).collect();
            assert!(!powers.is_empty());
            let linked = |power: &pb::CatalogueItem| {
                items.iter().find(|i| {
                    matches!(&i.details, Some(pb::catalogue_item::Details::Responsibility(r))
                        if r.power_item_code == power.code)
                })
            };
            if linked(powers[0]).is_none() {
                without += 1;
                assert!(powers.iter().all(|p| linked(p).is_none()), "{}: all companions or none", county.code);
                continue;
            }
            for power in powers {
                let companion = linked(power).unwrap_or_else(|| panic!("{} {} has none", county.code, power.code));
                assert_eq!(companion.duty_area, power.duty_area);
                assert_eq!(companion.responsible_institution_title, power.responsible_institution_title);
                assert_eq!(companion.code, format!("{}-ZR", power.code));
            }
        }
        // About one county in twenty keeps its powers without responsibilities, for the report to show.
        assert!((1..=counties.len() / 8).contains(&without), "{without} of {} counties", counties.len());
        assert_eq!(county_template(2023, &counties[7], 7), county_template(2023, &counties[7], 7));
    }

    #[test]
    fn the_template_titles_resolve_to_the_demos_institutions() {
        // DY names the social-affairs centre; ZZ2 the social-affairs office, not the centre.
        assert!(SOCIAL_AFFAIRS_CENTRE.contains("社会事务综合服务中心"));
        assert!(!SOCIAL_AFFAIRS_CENTRE.contains("社会事务办"));
        assert!(OFFICES[2].contains("社会事务办"));
    }
}
