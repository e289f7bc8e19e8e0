//! A horizontal grouped bar chart in SVG: one group per category (a country, a location),
//! one bar per series (declared value, ledger cost). Drawn on the server, so it needs no
//! script, prints as it looks and passes the content security policy.
//!
//! Bar lengths are computed with exact decimals: money never passes through a float. The
//! labels show values to 2 decimals; the tables beside a chart carry the exact amounts.

use maud::{html, Markup};
use rust_decimal::Decimal;

use crate::i18n::Lang;

/// One category of the chart and its value in each series.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// A code, shown as it is (`FR`, `RAW`).
    pub label: String,
    /// One value per series, in the order of [`BarChart::series`].
    pub values: Vec<Decimal>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BarChart<'a> {
    /// The chart's accessible title.
    pub title: &'a str,
    /// The series' names, for the legend.
    pub series: Vec<&'a str>,
    pub groups: Vec<Group>,
}

const WIDTH: u32 = 640;
const LABEL_W: u32 = 96;
const BAR_MAX: u32 = 400;
const BAR_H: u32 = 16;
const BAR_GAP: u32 = 3;
const GROUP_GAP: u32 = 14;
const LEGEND_H: u32 = 26;

/// The length of a bar for `value` when `max` is the longest, to a tenth of a pixel.
pub fn bar_length(value: Decimal, max: Decimal) -> Decimal {
    if max <= Decimal::ZERO || value <= Decimal::ZERO {
        return Decimal::ZERO;
    }
    let len = value * Decimal::from(BAR_MAX) / max;
    len.min(Decimal::from(BAR_MAX)).round_dp(1).normalize()
}

fn group_height(series: u32) -> u32 {
    series * (BAR_H + BAR_GAP) - BAR_GAP + GROUP_GAP
}

/// The chart, or `no_data` when there is nothing to draw.
pub fn bar_chart(chart: &BarChart<'_>, lang: Lang, no_data: &str) -> Markup {
    let n_series = u32::try_from(chart.series.len()).unwrap_or(u32::MAX).max(1);
    let drawable = chart
        .groups
        .iter()
        .any(|g| g.values.iter().any(|v| *v > Decimal::ZERO));
    if chart.groups.is_empty() || !drawable {
        return html! { p.empty.chart-empty { (no_data) } };
    }
    let max = chart
        .groups
        .iter()
        .flat_map(|g| g.values.iter().copied())
        .max()
        .unwrap_or(Decimal::ZERO);
    let n_groups = u32::try_from(chart.groups.len()).unwrap_or(u32::MAX);
    let height = LEGEND_H + n_groups.saturating_mul(group_height(n_series)) + 4;
    html! {
        figure.chart {
            svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label=(chart.title)
                viewBox=(format!("0 0 {WIDTH} {height}")) width="100%" preserveAspectRatio="xMinYMin meet" {
                title { (chart.title) }
                g.legend {
                    @for (i, name) in chart.series.iter().enumerate() {
                        @let x = LABEL_W + u32::try_from(i).unwrap_or(0) * 160;
                        rect class=(format!("bar s{i}")) x=(x) y="4" width="12" height="12" rx="2" {}
                        text.legend-label x=(x + 18) y="15" { (name) }
                    }
                }
                @for (gi, g) in chart.groups.iter().enumerate() {
                    @let top = LEGEND_H + u32::try_from(gi).unwrap_or(0) * group_height(n_series);
                    g.group data-label=(g.label) {
                        text.axis-label x=(LABEL_W - 8) y=(top + (group_height(n_series) - GROUP_GAP) / 2 + 5) text-anchor="end" {
                            (g.label)
                        }
                        @for (si, v) in g.values.iter().enumerate() {
                            @let y = top + u32::try_from(si).unwrap_or(0) * (BAR_H + BAR_GAP);
                            @let len = bar_length(*v, max);
                            rect class=(format!("bar s{si}")) x=(LABEL_W) y=(y) width=(len) height=(BAR_H) rx="2" {
                                title { (chart.series.get(si).copied().unwrap_or("")) " " (g.label) ": " (lang.number(&v.round_dp(2).to_string())) }
                            }
                            text.value-label x=(Decimal::from(LABEL_W) + len + Decimal::from(6)) y=(y + BAR_H - 4) {
                                (lang.number(&v.round_dp(2).to_string()))
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn sample() -> BarChart<'static> {
        // Declared value against ledger cost for two countries of the source story.
        BarChart {
            title: "Declared value against ledger cost",
            series: vec!["Declared", "Ledger cost"],
            groups: vec![
                Group {
                    label: "FR".into(),
                    values: vec![d("50000.0000"), d("47500.5000")],
                },
                Group {
                    label: "KR".into(),
                    values: vec![d("25000.0000"), d("30000.0000")],
                },
            ],
        }
    }

    #[test]
    fn bars_are_proportional_to_the_largest_value() {
        assert_eq!(bar_length(d("50000"), d("50000")), d("400"));
        assert_eq!(bar_length(d("25000"), d("50000")), d("200"));
        assert_eq!(bar_length(d("47500.5"), d("50000")), d("380"));
        assert_eq!(bar_length(d("1"), d("3")), d("133.3"));
        assert_eq!(bar_length(d("-5"), d("10")), Decimal::ZERO);
        assert_eq!(bar_length(d("5"), Decimal::ZERO), Decimal::ZERO);
    }

    #[test]
    fn the_chart_draws_every_group_and_series_with_labels() {
        let svg = bar_chart(&sample(), Lang::En, "nothing").into_string();
        assert!(svg.starts_with("<figure class=\"chart\"><svg"));
        assert!(svg.contains("data-label=\"FR\""));
        assert!(svg.contains("data-label=\"KR\""));
        // The largest value gets the full length; the others in proportion.
        assert!(svg.contains("width=\"400\""), "{svg}");
        assert!(svg.contains("width=\"380\""), "{svg}");
        assert!(svg.contains("width=\"200\""), "{svg}");
        assert!(svg.contains("width=\"240\""), "{svg}");
        assert_eq!(
            svg.matches("class=\"bar s0\"").count(),
            3,
            "legend and two bars"
        );
        assert_eq!(svg.matches("class=\"bar s1\"").count(), 3);
        assert!(svg.contains("50,000.00"));
        assert!(svg.contains("47,500.50"));
        assert!(svg.contains("Ledger cost"));
        assert!(!svg.contains("nothing"));
    }

    #[test]
    fn the_height_grows_with_the_groups() {
        let one = BarChart {
            groups: sample().groups[..1].to_vec(),
            ..sample()
        };
        let h1 = bar_chart(&one, Lang::En, "").into_string();
        let h2 = bar_chart(&sample(), Lang::En, "").into_string();
        let height = |s: &str| {
            let v = s.split("viewBox=\"0 0 640 ").nth(1).unwrap();
            v.split('"').next().unwrap().parse::<u32>().unwrap()
        };
        assert_eq!(height(&h2) - height(&h1), group_height(2));
    }

    #[test]
    fn no_data_or_only_zeros_says_so_instead_of_drawing() {
        let empty = BarChart {
            groups: vec![],
            ..sample()
        };
        let out = bar_chart(&empty, Lang::Zh, "暂无数据").into_string();
        assert!(out.contains("暂无数据"));
        assert!(!out.contains("<svg"));
        let zeros = BarChart {
            groups: vec![Group {
                label: "DE".into(),
                values: vec![Decimal::ZERO, Decimal::ZERO],
            }],
            ..sample()
        };
        assert!(!bar_chart(&zeros, Lang::En, "none")
            .into_string()
            .contains("<svg"));
    }

    #[test]
    fn labels_are_escaped() {
        let mut c = sample();
        c.groups[0].label = "<b>".into();
        let out = bar_chart(&c, Lang::En, "").into_string();
        assert!(out.contains("&lt;b&gt;"));
        assert!(!out.contains("<b>"));
    }
}
