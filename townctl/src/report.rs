//! Self-contained HTML report for `townctl report`.
//!
//! Everything (CSS, SVG charts) is inline and no URL is ever emitted, so the file can be
//! mailed or opened on an offline machine. The output depends only on the input (no clock,
//! no random ids), so reports can be diffed.

use std::collections::HashMap;
use std::fmt::{self, Write as _};

pub(crate) struct ReportData {
    pub title: String,
    pub scope: String,
    pub data_year: i32,
    pub generated_at: String,
    pub policy: String,
    /// 0..=2 entries, descending score.
    pub boundaries: Vec<Boundary>,
    pub townships: Vec<ReportTownship>,
    pub findings: Vec<ReportFinding>,
    /// Townships with approved staffing, in code order.
    pub staffing: Vec<ReportStaffing>,
}

/// A township's approved staffing (编制) beside its class's norms (None: the policy sets none).
pub(crate) struct ReportStaffing {
    pub code: String,
    pub name: String,
    pub class: u8,
    pub administrative: i64,
    pub administrative_norm: Option<u32>,
    pub public_institution: i64,
    pub public_institution_norm: Option<u32>,
}

pub(crate) struct Boundary {
    pub label: String,
    pub score: f64,
}

pub(crate) struct ReportTownship {
    pub code: String,
    pub name: String,
    pub county: String,
    pub score: f64,
    pub rank: u32,
    /// Effective class 1..=3, 0 = unclassified.
    pub class: u8,
    /// 0 = none.
    pub previous_class: u8,
}

pub(crate) struct ReportFinding {
    pub rule: String,
    /// false = warning.
    pub error: bool,
    pub township_code: String,
    pub township_name: String,
    pub message: String,
    /// The finding rests on an inferred figure (推定值，未经核实).
    pub inferred: bool,
}

/// Rows shown per rule; the rest are summarised so a city with thousands of findings stays small.
const FINDINGS_CAP: usize = 200;
/// Indexed by class; 0 = unclassified.
const CLASS_COLORS: [&str; 4] = ["#a0aec0", "#2b6cb0", "#2f9e5b", "#e08a1e"];
const CLASS_NAMES: [&str; 4] = ["未分类 / Unclassified", "一类 / Class 1", "二类 / Class 2", "三类 / Class 3"];
/// Marks a finding that rests on a figure the policy document does not give.
const INFERRED_BADGE: &str = " <span class=\"inferred\">推定值，未经核实 / inferred figure</span>";
const NO_DATA: &str = "无已分类乡镇 / no classified townships";

const CSS: &str = r#"
body{font-family:"Noto Sans CJK SC","Source Han Sans SC","Microsoft YaHei","PingFang SC","Hiragino Sans GB","WenQuanYi Micro Hei",sans-serif;color:#1a202c;max-width:1040px;margin:0 auto;padding:24px;line-height:1.5}
h1{font-size:24px;margin:0 0 8px}
h2{font-size:18px;border-bottom:2px solid #2b6cb0;padding-bottom:4px;margin:32px 0 12px}
h3{font-size:15px;margin:20px 0 6px}
.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;font-size:14px;color:#4a5568}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:16px 0}
.card{flex:1 1 auto;border:1px solid #e2e8f0;border-left:5px solid #718096;border-radius:6px;padding:6px 12px}
.card .n{font-size:26px;font-weight:700}
.card .l{font-size:13px;color:#4a5568}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #e2e8f0;padding:4px 8px;text-align:left;vertical-align:middle}
th{background:#f7fafc}
.num{text-align:right;font-variant-numeric:tabular-nums}
tr.total td{font-weight:700;border-top:2px solid #cbd5e0}
svg{display:block}
svg.chart{width:100%;height:auto;font-size:12px}
.legend{display:flex;flex-wrap:wrap;gap:6px 18px;font-size:13px;margin:4px 0 0 56px}
.sw{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.sw.dash{width:16px;height:0;border-top:2px dashed #c53030;border-radius:0;vertical-align:3px}
.err{color:#c53030;font-weight:600}
.warn{color:#b7791f;font-weight:600}
.inferred{font-size:12px;color:#6b46c1;border:1px solid #6b46c1;border-radius:3px;padding:0 3px}
.empty{color:#4a5568;background:#f7fafc;border-radius:6px;padding:14px}
.more{color:#4a5568;font-style:italic}
summary{cursor:pointer;font-weight:600}
@media print{body{max-width:none;padding:0}*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
h2,h3{break-after:avoid}tr,svg,.card,.legend{break-inside:avoid}details::details-content{content-visibility:visible}}
"#;

/// Renders the whole report as one HTML document.
pub(crate) fn render(data: &ReportData) -> String {
    let mut out = String::with_capacity(64 * 1024 + data.townships.len() * 300 + data.findings.len() * 200);
    // Writing into a String cannot fail; the fmt::Result only exists to allow `?` below.
    let _ = write_report(&mut out, data);
    out
}

fn write_report(out: &mut String, d: &ReportData) -> fmt::Result {
    let title = esc(&d.title);
    write!(out, "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n")?;
    write!(out, "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{title}</title>\n")?;
    write!(out, "<style>{CSS}</style>\n</head>\n<body>\n<h1>{title}</h1>\n<div class=\"meta\">")?;
    let bounds = d.boundaries.iter().map(|b| esc(&b.label)).collect::<Vec<_>>().join("；");
    for (k, v) in [
        ("范围 / Scope", esc(&d.scope)),
        ("数据年度 / Data year", d.data_year.to_string()),
        ("生成时间 / Generated", esc(&d.generated_at)),
        ("分类政策 / Policy", esc(&d.policy)),
        ("分类界限 / Boundaries", if bounds.is_empty() { "—".into() } else { bounds }),
    ] {
        write!(out, "<span>{k}</span><span>{v}</span>")?;
    }
    out.push_str("</div>\n<div class=\"cards\">\n");
    let mut per_class = [0usize; 4];
    d.townships.iter().for_each(|t| per_class[class_idx(t.class)] += 1);
    let errors = d.findings.iter().filter(|f| f.error).count();
    let mut cards = vec![("乡镇总数 / Townships", d.townships.len(), "#4a5568")];
    for c in 1..=3 {
        cards.push((CLASS_NAMES[c], per_class[c], CLASS_COLORS[c]));
    }
    if per_class[0] > 0 {
        cards.push((CLASS_NAMES[0], per_class[0], CLASS_COLORS[0]));
    }
    cards.push(("错误 / Errors", errors, "#c53030"));
    cards.push(("警告 / Warnings", d.findings.len() - errors, "#d69e2e"));
    for (label, n, color) in cards {
        writeln!(
            out,
            "<div class=\"card\" style=\"border-left-color:{color}\"><div class=\"n\">{n}</div><div class=\"l\">{label}</div></div>"
        )?;
    }
    out.push_str("</div>\n<h2>得分分布 / Score distribution</h2>\n");
    write_histogram(out, d)?;
    out.push_str("<h2>各县（市、区）分类统计 / Classes per county</h2>\n");
    write_counties(out, d)?;
    out.push_str("<h2>合规检查 / Compliance findings</h2>\n");
    write_findings(out, &d.findings)?;
    out.push_str("<h2>编制 / Staffing</h2>\n");
    write_staffing(out, d)?;
    out.push_str("<h2>乡镇明细 / All townships</h2>\n");
    write_townships(out, &d.townships)?;
    out.push_str("</body>\n</html>\n");
    Ok(())
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const GREY: &str = "#4a5568";
const DASH: &str = "class=\"boundary\" stroke=\"#c53030\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"";
const AXIS: &str = "stroke=\"#4a5568\"";

fn line(out: &mut String, (x1, y1): (f64, f64), (x2, y2): (f64, f64), attrs: &str) -> fmt::Result {
    writeln!(out, "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" {attrs}/>")
}

/// `s` must already be escaped.
fn text(out: &mut String, (x, y): (f64, f64), anchor: &str, fill: &str, s: &str) -> fmt::Result {
    writeln!(out, "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"{anchor}\" fill=\"{fill}\">{s}</text>")
}

fn class_idx(c: u8) -> usize {
    if (1..=3).contains(&c) { c as usize } else { 0 }
}

/// Smallest 1/2/5×10^k step that is ≥ x.
fn nice_step(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|&s| s >= x).unwrap_or(10.0 * mag)
}

fn num(x: f64) -> String {
    if x.fract() == 0.0 { format!("{x:.0}") } else { format!("{x:.1}") }
}

struct Hist {
    lo: f64,
    width: f64,
    /// Regular bins `[lo + i·w, lo + (i+1)·w)`, plus one open "≥" bin at the end when `open`.
    counts: Vec<usize>,
    open: bool,
}

fn histogram(scores: &[f64], bounds: &[f64]) -> Option<Hist> {
    let mut v: Vec<f64> = scores.iter().copied().filter(|s| s.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let (min, max) = (v[0], v[v.len() - 1]);
    let p99 = v[(v.len() - 1) * 99 / 100];
    // A long right tail (e.g. a few urban 街道) would squash the bulk; clamp the axis at p99.
    let top = if max - p99 > 0.25 * (p99 - min).max(1.0) { p99 } else { max };
    // Boundaries are always on the axis so their lines can be drawn.
    let lo_raw = bounds.iter().fold(min, |a, &b| a.min(b));
    let hi_raw = bounds.iter().fold(top, |a, &b| a.max(b));
    let width = nice_step((hi_raw - lo_raw) / 30.0).max(5.0);
    let lo = (lo_raw / width).floor() * width;
    let regular = bucket(hi_raw - lo, width) + 1;
    let open = max >= lo + regular as f64 * width;
    let mut counts = vec![0; regular + usize::from(open)];
    for s in v {
        let i = bucket(s - lo, width).min(counts.len() - 1);
        counts[i] += 1;
    }
    Some(Hist { lo, width, counts, open })
}

/// The histogram bucket of a distance from the lowest bound: 0 below it.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a floored, non-negative bucket count of scores"
)]
fn bucket(distance: f64, width: f64) -> usize {
    (distance / width).floor().max(0.0) as usize
}

fn write_histogram(out: &mut String, d: &ReportData) -> fmt::Result {
    let bounds: Vec<&Boundary> = d.boundaries.iter().filter(|b| b.score.is_finite()).collect();
    let bscores: Vec<f64> = bounds.iter().map(|b| b.score).collect();
    let scores: Vec<f64> = d.townships.iter().map(|t| t.score).collect();
    let Some(h) = histogram(&scores, &bscores) else {
        return writeln!(out, "<p class=\"empty\">{NO_DATA}</p>");
    };
    let (w, ht, l, r, t, b) = (960.0, 340.0, 56.0, 16.0, 44.0, 50.0);
    let (pw, ph) = (w - l - r, ht - t - b);
    let n = h.counts.len();
    let regular = n - usize::from(h.open);
    let bw = pw / n as f64;
    let maxc = h.counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let ystep = nice_step(maxc / 5.0).max(1.0);
    let ytop = (maxc / ystep).ceil() * ystep;
    let yof = |c: f64| t + ph - c / ytop * ph;
    let xof = |s: f64| l + (s - h.lo) / h.width * bw;
    writeln!(
        out,
        "<svg class=\"chart\" viewBox=\"0 0 {w} {ht}\" role=\"img\" aria-label=\"得分分布直方图 / score histogram\">"
    )?;
    let mut y = 0.0;
    while y <= ytop + 1e-9 {
        line(out, (l, yof(y)), (l + pw, yof(y)), "stroke=\"#edf2f7\"")?;
        text(out, (l - 6.0, yof(y) + 4.0), "end", GREY, &num(y))?;
        y += ystep;
    }
    for (i, &c) in h.counts.iter().enumerate().filter(|(_, c)| **c > 0) {
        let a = h.lo + i as f64 * h.width;
        // Colour by the class the bin's midpoint falls in; grey if no boundaries are configured.
        let mid = a + h.width / 2.0;
        let class = if bscores.is_empty() { 0 } else { 1 + bscores.iter().filter(|&&s| s > mid).count() };
        let range =
            if i >= regular { format!("≥ {}", num(a)) } else { format!("[{}, {})", num(a), num(a + h.width)) };
        let (x, y) = (l + i as f64 * bw + 1.0, yof(c as f64));
        write!(
            out,
            "<rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" ",
            (bw - 2.0).max(1.0),
            t + ph - y
        )?;
        writeln!(out, "fill=\"{}\"><title>{range}：{c} 个乡镇 / townships</title></rect>", CLASS_COLORS[class.min(3)])?;
    }
    line(out, (l, t + ph), (l + pw, t + ph), AXIS)?;
    // Label every k-th bin edge so labels never collide (~16 labels max).
    let k = regular.div_ceil(16).max(1);
    // With an open bin its own "≥ X" label replaces the last edge label (they would overlap).
    for i in (0..=regular).step_by(k).filter(|&i| !(h.open && i == regular)) {
        let x = l + i as f64 * bw;
        line(out, (x, t + ph), (x, t + ph + 4.0), AXIS)?;
        text(out, (x, t + ph + 17.0), "middle", GREY, &num(h.lo + i as f64 * h.width))?;
    }
    if h.open {
        let (x, a) = (l + (regular as f64 + 0.5) * bw, h.lo + regular as f64 * h.width);
        text(out, (x, t + ph + 17.0), "middle", "#c05621", &format!("≥ {}", num(a)))?;
    }
    text(out, (l + pw / 2.0, ht - 6.0), "middle", "#2d3748", "得分 / Score")?;
    writeln!(
        out,
        "<text transform=\"translate(14 {}) rotate(-90)\" text-anchor=\"middle\" fill=\"#2d3748\">乡镇数 / Townships</text>",
        t + ph / 2.0
    )?;
    for (j, bd) in bounds.iter().enumerate() {
        let x = xof(bd.score);
        // Alternate label rows so two close boundaries don't overlap; keep labels inside the box.
        let ly = t - 8.0 - 16.0 * (j % 2) as f64;
        let anchor = match x {
            x if x > l + pw * 0.85 => "end",
            x if x < l + pw * 0.15 => "start",
            _ => "middle",
        };
        line(out, (x, ly + 4.0), (x, t + ph), DASH)?;
        text(out, (x, ly), anchor, "#c53030", &esc(&bd.label))?;
    }
    out.push_str("</svg>\n<div class=\"legend\">");
    let classes = if bounds.is_empty() { 0..=0 } else { 1..=bounds.len() + 1 };
    for c in classes.map(|c| c.min(3)) {
        let (color, name) = (CLASS_COLORS[c], CLASS_NAMES[c]);
        write!(out, "<span><span class=\"sw\" style=\"background:{color}\"></span>{name}</span>")?;
    }
    writeln!(out, "<span><span class=\"sw dash\"></span>分类界限 / class boundary</span></div>")
}

struct CountyRow<'a> {
    name: &'a str,
    classes: [usize; 4],
    changed: usize,
}

fn write_counties(out: &mut String, d: &ReportData) -> fmt::Result {
    if d.townships.is_empty() {
        return writeln!(out, "<p class=\"empty\">{NO_DATA}</p>");
    }
    // Keep the input order of first appearance (the caller already orders by code).
    let mut rows: Vec<CountyRow> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut total = CountyRow { name: "合计 / Total", classes: [0; 4], changed: 0 };
    for t in &d.townships {
        let i = *index.entry(&t.county).or_insert_with(|| {
            rows.push(CountyRow { name: &t.county, classes: [0; 4], changed: 0 });
            rows.len() - 1
        });
        // A change needs two real classes: newly or no-longer classified is not a class move.
        let changed = usize::from(t.previous_class != 0 && t.class != 0 && t.previous_class != t.class);
        for row in [&mut rows[i], &mut total] {
            row.classes[class_idx(t.class)] += 1;
            row.changed += changed;
        }
    }
    let max_n = rows.iter().map(|r| r.classes.iter().sum::<usize>()).max().unwrap_or(1).max(1) as f64;
    out.push_str("<table>\n<tr><th>县（市、区）/ County</th><th class=\"num\">乡镇 / Townships</th><th class=\"num\">一类 / 1</th><th class=\"num\">二类 / 2</th><th class=\"num\">三类 / 3</th><th class=\"num\">未分类 / None</th><th class=\"num\">类别变动 / Changed</th><th>构成 / Mix</th></tr>\n");
    let n_rows = rows.len();
    for (k, row) in rows.iter().chain(std::iter::once(&total)).enumerate() {
        let n: usize = row.classes.iter().sum();
        let [c0, c1, c2, c3] = row.classes;
        let cls = if k == n_rows { " class=\"total\"" } else { "" };
        write!(
            out,
            "<tr{cls}><td>{}</td><td class=\"num\">{n}</td><td class=\"num\">{c1}</td><td class=\"num\">{c2}</td><td class=\"num\">{c3}</td><td class=\"num\">{c0}</td><td class=\"num\">{}</td><td>",
            esc(row.name),
            row.changed
        )?;
        if k < n_rows {
            // Bar length is relative to the largest county so sizes compare across rows.
            out.push_str("<svg width=\"220\" height=\"14\" viewBox=\"0 0 220 14\">");
            let mut x = 0.0;
            for c in [1, 2, 3, 0] {
                let w = row.classes[c] as f64 / max_n * 220.0;
                if w > 0.0 {
                    write!(
                        out,
                        "<rect x=\"{x:.1}\" y=\"1\" width=\"{w:.1}\" height=\"12\" fill=\"{}\"><title>{}：{}</title></rect>",
                        CLASS_COLORS[c], CLASS_NAMES[c], row.classes[c]
                    )?;
                }
                x += w;
            }
            out.push_str("</svg>");
        }
        out.push_str("</td></tr>\n");
    }
    out.push_str("</table>\n");
    Ok(())
}

fn write_findings(out: &mut String, findings: &[ReportFinding]) -> fmt::Result {
    if findings.is_empty() {
        return writeln!(out, "<p class=\"empty\">无合规问题 / no findings</p>");
    }
    let mut rules: Vec<(&str, Vec<&ReportFinding>)> = Vec::new();
    for f in findings {
        match rules.iter_mut().find(|(r, _)| *r == f.rule) {
            Some((_, v)) => v.push(f),
            None => rules.push((&f.rule, vec![f])),
        }
    }
    // Rules with errors first, then by size; the stable sort keeps first-appearance order on ties.
    rules.sort_by_key(|(_, v)| (!v.iter().any(|f| f.error), std::cmp::Reverse(v.len())));
    out.push_str("<table>\n<tr><th>规则 / Rule</th><th class=\"num\">错误 / Errors</th><th class=\"num\">警告 / Warnings</th><th class=\"num\">合计 / Total</th></tr>\n");
    for (rule, v) in &rules {
        let e = v.iter().filter(|f| f.error).count();
        writeln!(
            out,
            "<tr><td><code>{}</code></td><td class=\"num err\">{e}</td><td class=\"num warn\">{}</td><td class=\"num\">{}</td></tr>",
            esc(rule),
            v.len() - e,
            v.len()
        )?;
    }
    out.push_str("</table>\n");
    for (rule, v) in &mut rules {
        v.sort_by_key(|f| !f.error);
        writeln!(out, "<h3><code>{}</code>（{}）</h3>", esc(rule), v.len())?;
        out.push_str("<table>\n<tr><th>级别 / Level</th><th>乡镇代码 / Code</th><th>乡镇名称 / Name</th><th>说明 / Message</th></tr>\n");
        for f in v.iter().take(FINDINGS_CAP) {
            let inferred = if f.inferred { INFERRED_BADGE } else { "" };
            let level = if f.error {
                "<span class=\"err\">错误 / error</span>"
            } else {
                "<span class=\"warn\">警告 / warning</span>"
            };
            writeln!(
                out,
                "<tr class=\"f\"><td>{level}</td><td>{}</td><td>{}</td><td>{}{inferred}</td></tr>",
                esc(&f.township_code),
                esc(&f.township_name),
                esc(&f.message)
            )?;
        }
        if v.len() > FINDINGS_CAP {
            let more = v.len() - FINDINGS_CAP;
            writeln!(out, "<tr><td colspan=\"4\" class=\"more\">… 另有 {more} 条 / and {more} more</td></tr>")?;
        }
        out.push_str("</table>\n");
    }
    Ok(())
}

/// Approved 行政/事业编制 per township against its class's norm, and the institutions staffed over their
/// approval (超编), the `staffing.institution_over_approved` findings.
fn write_staffing(out: &mut String, d: &ReportData) -> fmt::Result {
    if d.staffing.is_empty() {
        return writeln!(out, "<p class=\"empty\">无核定编制 / no approved staffing</p>");
    }
    let over = |approved: i64, norm: Option<u32>| norm.is_some_and(|norm| approved > i64::from(norm));
    let shown = |approved: i64, norm: Option<u32>| {
        let norm = norm.map_or("—".to_owned(), |n| n.to_string());
        format!("{approved} / {norm}")
    };
    let flagged = d
        .staffing
        .iter()
        .filter(|s| {
            over(s.administrative, s.administrative_norm) || over(s.public_institution, s.public_institution_norm)
        })
        .count();
    writeln!(
        out,
        "<p>核定编制 / 分类标准（推定值，未经核实）；{flagged} 个乡镇超出标准 / approved vs the class norm (inferred), {flagged} over.</p>"
    )?;
    writeln!(
        out,
        "<details>\n<summary>展开 {} 个乡镇 / Show {} townships</summary>",
        d.staffing.len(),
        d.staffing.len()
    )?;
    out.push_str("<table>\n<tr><th>代码 / Code</th><th>名称 / Name</th><th>类别 / Class</th><th class=\"num\">行政编制 / Administrative</th><th class=\"num\">事业编制 / Public institution</th></tr>\n");
    for s in &d.staffing {
        let cell = |approved: i64, norm: Option<u32>| {
            let class = if over(approved, norm) { " err" } else { "" };
            format!("<td class=\"num{class}\">{}</td>", shown(approved, norm))
        };
        writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td>{}{}</tr>",
            esc(&s.code),
            esc(&s.name),
            ["—", "一类", "二类", "三类"][class_idx(s.class)],
            cell(s.administrative, s.administrative_norm),
            cell(s.public_institution, s.public_institution_norm)
        )?;
    }
    out.push_str("</table>\n</details>\n");
    let overstaffed: Vec<&ReportFinding> =
        d.findings.iter().filter(|f| f.rule == "staffing.institution_over_approved").collect();
    if !overstaffed.is_empty() {
        writeln!(out, "<h3>超编 / Over the approved staffing（{}）</h3>", overstaffed.len())?;
        out.push_str("<table>\n<tr><th>乡镇代码 / Code</th><th>乡镇名称 / Name</th><th>说明 / Message</th></tr>\n");
        for f in overstaffed.iter().take(FINDINGS_CAP) {
            writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&f.township_code),
                esc(&f.township_name),
                esc(&f.message)
            )?;
        }
        out.push_str("</table>\n");
    }
    Ok(())
}

fn write_townships(out: &mut String, townships: &[ReportTownship]) -> fmt::Result {
    if townships.is_empty() {
        return writeln!(out, "<p class=\"empty\">{NO_DATA}</p>");
    }
    let mut v: Vec<&ReportTownship> = townships.iter().collect();
    v.sort_by(|a, b| a.rank.cmp(&b.rank).then_with(|| a.code.cmp(&b.code)));
    writeln!(out, "<details>\n<summary>展开全部 {} 个乡镇（按排名）/ Show all townships by rank</summary>", v.len())?;
    out.push_str("<table>\n<tr><th class=\"num\">排名 / Rank</th><th>代码 / Code</th><th>名称 / Name</th><th>县（市、区）/ County</th><th class=\"num\">得分 / Score</th><th>类别 / Class</th><th>原类别 / Previous</th></tr>\n");
    let cell = |c: u8| ["—", "一类", "二类", "三类"][class_idx(c)];
    for t in v {
        let score = if t.score.is_finite() { format!("{:.2}", t.score) } else { "—".into() };
        writeln!(
            out,
            "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{score}</td><td>{}</td><td>{}</td></tr>",
            t.rank,
            esc(&t.code),
            esc(&t.name),
            esc(&t.county),
            cell(t.class),
            cell(t.previous_class)
        )?;
    }
    out.push_str("</table>\n</details>\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn town(code: &str, name: &str, county: &str, score: f64, class: u8, prev: u8) -> ReportTownship {
        let (code, name, county) = (code.into(), name.into(), county.into());
        ReportTownship { code, name, county, score, rank: 0, class, previous_class: prev }
    }

    fn finding(rule: &str, error: bool, i: usize) -> ReportFinding {
        let (rule, township_code, message) = (rule.into(), format!("T{i:04}"), format!("msg {i}"));
        ReportFinding { rule, error, township_code, township_name: "某镇".into(), message, inferred: false }
    }

    fn data(townships: Vec<ReportTownship>, findings: Vec<ReportFinding>) -> ReportData {
        ReportData {
            title: "长沙市 乡镇（街道）分类报告".into(),
            scope: "cities/4301".into(),
            data_year: 2025,
            generated_at: "2026-11-28 18:05 UTC".into(),
            policy: "default 2024.1 (SCORE_THRESHOLDS)".into(),
            boundaries: vec![
                Boundary { label: "一类 ≥ 120".into(), score: 120.0 },
                Boundary { label: "二类 ≥ 80".into(), score: 80.0 },
            ],
            townships,
            findings,
            staffing: vec![],
        }
    }

    #[test]
    fn staffing_shows_approved_against_the_norm_and_the_overstaffed() {
        let mut d = data(vec![], vec![finding("staffing.institution_over_approved", true, 1)]);
        d.staffing = vec![ReportStaffing {
            code: "430102003".into(),
            name: "东湖镇".into(),
            class: 3,
            administrative: 26,
            administrative_norm: Some(25),
            public_institution: 12,
            public_institution_norm: None,
        }];
        let html = render(&d);
        assert!(html.contains("<td class=\"num err\">26 / 25</td>"), "over the norm is marked");
        assert!(html.contains("<td class=\"num\">12 / —</td>"), "no norm, nothing to be over");
        assert!(html.contains("1 个乡镇超出标准"));
        assert!(html.contains("超编 / Over the approved staffing（1）") && html.contains("msg 1"));
        let empty = render(&data(vec![], vec![]));
        assert!(empty.contains("无核定编制"));
    }

    #[test]
    fn a_finding_resting_on_an_inferred_figure_is_marked() {
        let mut resting = finding("posts.quota", true, 1);
        resting.inferred = true;
        let html = render(&data(vec![], vec![resting, finding("plaques.max", true, 2)]));
        assert_eq!(html.matches("<span class=\"inferred\">推定值，未经核实").count(), 1, "{html}");
    }

    #[test]
    fn escapes_all_text() {
        let mut f = finding("<script>rule", true, 1);
        f.message = "<script>alert('m')</script>".into();
        let t = town("<b>", "<script>alert(1)</script>", "<script>县", 100.0, 2, 2);
        let html = render(&data(vec![t], vec![f]));
        assert!(!html.contains("<script"), "raw <script> leaked");
        assert!(!html.contains("<b>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("&lt;script&gt;alert(&#39;m&#39;)"));
    }

    #[test]
    fn boundaries_are_dashed_lines_with_labels() {
        let html = render(&data(vec![town("1", "甲镇", "A县", 95.0, 2, 0)], vec![]));
        assert_eq!(
            html.matches("class=\"boundary\" stroke=\"#c53030\" stroke-width=\"1.5\" stroke-dasharray").count(),
            2
        );
        assert!(html.contains(">一类 ≥ 120</text>"));
        assert!(html.contains(">二类 ≥ 80</text>"));
    }

    #[test]
    fn no_external_resources() {
        let ts = (0..50).map(|i| town(&i.to_string(), "镇", "县", 60.0 + f64::from(i) * 3.0, 2, 1)).collect();
        let html = render(&data(ts, vec![finding("r", false, 1)])).replace("http://www.w3.org/2000/svg", "");
        for bad in ["http://", "https://", "//cdn", "<script", "<link", "src=", "@import", "url("] {
            assert!(!html.contains(bad), "found {bad}");
        }
    }

    #[test]
    fn empty_input_shows_no_data_messages() {
        let mut d = data(vec![], vec![]);
        d.boundaries.clear();
        let html = render(&d);
        assert!(html.contains(NO_DATA));
        assert!(!html.contains("<svg class=\"chart\""));
        assert!(html.contains("无合规问题 / no findings"));
    }

    #[test]
    fn single_and_equal_scores_draw_one_bar() {
        for n in [1, 7] {
            let ts = (0..n).map(|i| town(&i.to_string(), "镇", "县", 100.0, 2, 2)).collect();
            let html = render(&data(ts, vec![]));
            assert_eq!(html.matches("<rect class=\"bar\"").count(), 1);
            assert!(html.contains(&format!("[100, 105)：{n} 个乡镇")), "n={n}");
        }
    }

    #[test]
    fn long_tail_goes_into_open_bin() {
        let mut scores: Vec<f64> = (0..200).map(|i| 60.0 + f64::from(i % 80)).collect();
        scores.push(900.0);
        let h = histogram(&scores, &[120.0, 80.0]).expect("non-empty");
        assert!(h.open);
        assert_eq!(h.counts.iter().sum::<usize>(), 201);
        assert_eq!(h.counts.last(), Some(&1));
    }

    #[test]
    fn counts_per_county() {
        let ts = vec![
            town("1", "a", "乙县", 130.0, 1, 2),
            town("2", "b", "甲县", 90.0, 2, 2),
            town("3", "c", "乙县", 70.0, 3, 3),
            town("4", "d", "乙县", 70.0, 0, 3),
            town("5", "e", "乙县", 125.0, 1, 3),
        ];
        let html = render(&data(ts, vec![]));
        // 乙县: 4 townships, 2×class 1, 0×class 2, 1×class 3, 1 unclassified, 2 changed.
        let row = "<td>乙县</td><td class=\"num\">4</td><td class=\"num\">2</td><td class=\"num\">0</td><td class=\"num\">1</td><td class=\"num\">1</td><td class=\"num\">2</td>";
        assert!(html.contains(row));
        assert!(html.contains("<td>甲县</td><td class=\"num\">1</td><td class=\"num\">0</td><td class=\"num\">1</td>"));
        assert!(html.find("<td>乙县</td>") < html.find("<td>甲县</td>"), "first-appearance order");
        assert!(
            html.contains(
                "<td>合计 / Total</td><td class=\"num\">5</td><td class=\"num\">2</td><td class=\"num\">1</td>"
            )
        );
    }

    #[test]
    fn findings_are_capped_per_rule() {
        let mut fs: Vec<ReportFinding> = (0..205).map(|i| finding("offices.count", i % 3 == 0, i)).collect();
        fs.push(finding("staff.ratio", false, 999));
        let html = render(&data(vec![town("1", "a", "县", 100.0, 2, 2)], fs));
        assert!(html.contains("… 另有 5 条 / and 5 more"));
        assert_eq!(html.matches("<tr class=\"f\">").count(), 201);
        assert!(!html.contains("另有 0 条"));
        assert!(html.find("<h3><code>offices.count</code>") < html.find("<h3><code>staff.ratio</code>"));
    }
}
