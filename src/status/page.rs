//! The status page of the service: one self-contained HTML document (inline
//! CSS, no scripts, no external resources) that an operator reads in the
//! morning. Every text from outside (site names, errors) goes through maud's
//! escaping; only the style sheet below is written out raw.

use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::format::{about, count, day_ranges_text, elapsed, limit, local, plural};
use crate::domain::states::RunOutcome;

use super::{AccountStatus, DayCell, DayState, RunFigures, RunProgress, SiteStatus, Snapshot};

/// Every how many days a date is written under the grid, counted back from
/// the newest day so that today always carries one.
const LABEL_EVERY: usize = 7;

/// The whole page for `snapshot`.
pub fn render(snapshot: &Snapshot) -> String {
    let sites: usize = snapshot.accounts.iter().map(|a| a.sites.len()).sum();
    let stale = snapshot.stale_sites().count();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "sonnys-etl status" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    h1 { "sonnys-etl status" }
                    p.times {
                        span #next-run { (next_run(snapshot)) }
                        span.muted {
                            "generated " (local(snapshot.generated_at, snapshot.schedule_timezone))
                        }
                    }
                    @if let Some(run) = &snapshot.current_run {
                        (current_run(snapshot, run))
                    }
                    @match &snapshot.last_run {
                        Some(run) => (last_run(snapshot, run)),
                        None => p.run.muted { "No finished run yet." },
                    }
                    @if !snapshot.recent_runs.is_empty() {
                        (recent_runs(snapshot))
                    }
                    p.summary {
                        (plural(sites, "site", "sites")) " in "
                        (plural(snapshot.accounts.len(), "account", "accounts")) ", "
                        @if stale == 0 {
                            span.ok-text { "none stale" }
                        } @else {
                            span.stale-text { (stale) " stale" }
                        }
                        " (stale: no complete data within "
                        (limit(snapshot.stale_after_seconds)) ")"
                    }
                    (legend(snapshot))
                }
                main {
                    @for account in &snapshot.accounts {
                        (account_section(snapshot, account))
                    }
                    @if snapshot.accounts.is_empty() {
                        p.muted { "No account configured." }
                    }
                }
            }
        }
    }
    .into_string()
}

fn next_run(snapshot: &Snapshot) -> String {
    match snapshot.next_run {
        Some(at) => format!("next run {}", local(at, snapshot.schedule_timezone)),
        None => "no scheduled run".to_owned(),
    }
}

fn current_run(snapshot: &Snapshot, run: &RunProgress) -> Markup {
    let percent = (run.finished * 100).checked_div(run.site_days).unwrap_or(0);
    html! {
        div.run.current {
            span.outcome.running { "running" }
            span {
                "since " (local(run.started_at, snapshot.schedule_timezone)) ": "
                strong { (count(run.finished)) } " of " (count(run.site_days)) " site-days finished"
                @if let Some(left) = run.left_seconds {
                    ", about " (about(left)) " left (forecast)"
                }
            }
            span.bar { span style=(format!("width: {}%", percent.min(100))) {} }
        }
    }
}

fn outcome_class(run: &RunFigures) -> &'static str {
    match run.outcome {
        RunOutcome::Ok => "ok",
        RunOutcome::Failed => "failed",
        RunOutcome::Interrupted => "other",
    }
}

fn last_run(snapshot: &Snapshot, run: &RunFigures) -> Markup {
    let outcome_class = outcome_class(run);
    html! {
        div.run.last {
            span.label { "last run" }
            span class={ "outcome " (outcome_class) } { (run.outcome) }
            span.muted { "finished " (local(run.finished_at, snapshot.schedule_timezone)) }
            dl.figures {
                div { dt { "site-days" } dd {
                    (count(run.done)) " done"
                    @if run.failed > 0 { ", " span.failed-text { (count(run.failed)) " failed" } }
                    " of " (count(run.site_days))
                } }
                div { dt { "transactions" } dd { (count(run.transactions)) } }
                div { dt { "new / changed" } dd { (count(run.inserted)) " / " (count(run.updated)) } }
                div { dt { "pages" } dd { (count(run.pages)) } }
                div { dt { "requests" } dd { (count(run.requests)) } }
                div { dt { "rate-limited (429)" } dd { (count(run.rate_limited)) } }
                div { dt { "duration" } dd { (elapsed(run.finished_at - run.started_at)) } }
            }
        }
    }
}

/// The last nights: one row per finished run, newest first.
fn recent_runs(snapshot: &Snapshot) -> Markup {
    let zone = snapshot.schedule_timezone;
    html! {
        table.nights aria-label="last nights" {
            caption { "last nights" }
            thead { tr {
                th { "started" } th { "outcome" } th { "duration" }
                th { "site-days done" } th { "requests" }
            } }
            tbody {
                @for run in &snapshot.recent_runs {
                    tr {
                        td { (local(run.started_at, zone)) }
                        td { span class={ "outcome " (outcome_class(run)) } { (run.outcome) } }
                        td.num { (elapsed(run.finished_at - run.started_at)) }
                        td.num { (count(run.done)) " / " (count(run.site_days)) }
                        td.num { (count(run.requests)) }
                    }
                }
            }
        }
    }
}

fn legend(snapshot: &Snapshot) -> Markup {
    let entries = [
        ("cell done", "done"),
        ("cell failed", "failed"),
        ("cell running", "running"),
        ("cell stale", "stale: its process is gone, redone next run"),
        ("cell missing", "missing, catch-up will retry"),
        ("cell missing beyond", "missing, older than catch-up"),
        ("cell not-ended", "not ended yet"),
    ];
    html! {
        ul.legend aria-label="legend" {
            @for (class, text) in entries {
                li { span class=(class) {} (text) }
            }
            li.muted { "catch-up: last " (snapshot.catch_up_days) " days" }
        }
    }
}

fn account_section(snapshot: &Snapshot, account: &AccountStatus) -> Markup {
    let stale = account.sites.iter().filter(|s| s.stale).count();
    html! {
        section.account {
            h2 {
                (account.name)
                span.muted {
                    " " (plural(account.sites.len(), "site", "sites"))
                    @if stale > 0 { ", " (stale) " stale" }
                }
            }
            @if let Some(backfill) = &account.backfill {
                p.backfill { (backfill.describe()) }
                @if let Some(risk) = backfill.describe_at_risk() {
                    p.backfill.warning { (risk) }
                }
            }
            @if let Some(lookback) = &account.lookback {
                p.lookback.muted { (lookback.describe()) }
            }
            @for p in &account.people {
                p.people.muted {
                    (p.data) ": last export "
                    (p.last_done_at.map_or("never done".to_owned(), |t| local(t, snapshot.schedule_timezone)))
                    ", newest record "
                    (p.latest_record_at.map_or("none".to_owned(), |t| local(t, snapshot.schedule_timezone)))
                    @if let Some(e) = &p.last_error { "; last attempt failed: " (e) }
                }
            }
            @for site in &account.sites {
                (site_row(snapshot, site))
            }
            @if account.sites.is_empty() {
                p.muted { "No site." }
            }
        }
    }
}

fn site_row(snapshot: &Snapshot, site: &SiteStatus) -> Markup {
    let row_class = if site.stale { "site is-stale" } else { "site" };
    html! {
        div class=(row_class) data-site=(site.code) {
            div.about {
                div.name {
                    span.code { (site.code) } " " (site.name)
                    @if site.stale {
                        " "
                        span.badge.stale title={
                            "no complete data within " (limit(snapshot.stale_after_seconds))
                        } { "STALE" }
                    }
                }
                div.zone.muted { (site.timezone.name()) }
                div.complete {
                    @match site.data_complete_until {
                        Some(at) => { "data complete until " strong { (local(at, site.timezone)) } },
                        None => span.stale-text { "no complete day yet" },
                    }
                }
            }
            div.history {
                div.grid {
                    @for day in &site.days {
                        (cell(site, day))
                    }
                }
                div.grid.labels aria-hidden="true" {
                    @for (i, day) in site.days.iter().enumerate() {
                        @if (site.days.len() - 1 - i) % LABEL_EVERY == 0 {
                            span style=(format!("grid-column: {}", i + 1)) {
                                (day.date.format("%b %-d"))
                            }
                        }
                    }
                }
                (problems(snapshot, site))
            }
        }
    }
}

fn cell(site: &SiteStatus, day: &DayCell) -> Markup {
    let (class, state) = match day.state {
        DayState::Done => ("cell done", "done"),
        DayState::Failed => ("cell failed", "failed"),
        DayState::Running => ("cell running", "running"),
        DayState::Stale => ("cell stale", "stale"),
        DayState::Missing if site.missing.contains(&day.date) => ("cell missing", "missing"),
        // Outside catch-up nothing will fetch it again on its own: greyed.
        DayState::Missing => ("cell missing beyond", "missing"),
        DayState::NotEnded => ("cell not-ended", "not_ended"),
    };
    let mut title = format!(
        "{} ({}): {}",
        day.date,
        day.date.format("%a"),
        day.state.as_str()
    );
    if let Some(transactions) = day.transactions {
        let transactions = u64::try_from(transactions).unwrap_or(0);
        title.push_str(&format!("\n{} transactions", count(transactions)));
    }
    if let Some(error) = &day.error {
        title.push_str(&format!("\nerror: {error}"));
    }
    if day.rejected > 0 {
        title.push_str(&format!(
            "\n{} records quarantined in sonnys.rejected_records",
            day.rejected
        ));
    }
    html! {
        span class=(class) data-date=(day.date) data-state=(state) title=(title) {}
    }
}

fn problems(snapshot: &Snapshot, site: &SiteStatus) -> Markup {
    html! {
        @if !site.failed.is_empty() {
            ul.failed-days {
                @for failed in &site.failed {
                    li {
                        span.date { (failed.date) }
                        span.attempts.muted { (plural(usize::try_from(failed.attempts).unwrap_or(0), "attempt", "attempts")) }
                        span.error { (failed.error) }
                    }
                }
            }
        }
        p.missing-days {
            @if site.missing.is_empty() {
                span.muted { "no day missing in the last " (snapshot.catch_up_days) " days" }
            } @else {
                span.missing-text { (plural(site.missing.len(), "day", "days")) " missing" }
                " in the last " (snapshot.catch_up_days) " days: " (day_ranges_text(&site.missing))
            }
        }
    }
}

const CSS: &str = r#"
:root {
  --done: #2f9e44; --failed: #e03131; --running: #1c7ed6; --missing: #f59f00;
  --beyond: #adb5bd; --line: #e4e7eb; --muted: #6b7280; --text: #1f2933;
}
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px 48px; background: #f6f7f9; color: var(--text);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header, main { max-width: 1180px; margin: 0 auto; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 0 0 8px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
h2 .muted { font-size: 13px; font-weight: normal; }
.muted { color: var(--muted); }
.times { margin: 0 0 12px; display: flex; gap: 18px; align-items: baseline; }
#next-run { font-weight: 600; font-size: 15px; }
.run { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px;
  margin: 0 0 10px; display: flex; flex-wrap: wrap; gap: 6px 14px; align-items: center; }
.run .label { font-weight: 600; }
.outcome { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff;
  font-weight: 600; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
.outcome.ok { background: var(--done); }
.outcome.failed { background: var(--failed); }
.outcome.running { background: var(--running); }
.outcome.other { background: var(--muted); }
.figures { display: flex; flex-wrap: wrap; gap: 4px 22px; margin: 0; width: 100%; }
.figures div { display: flex; flex-direction: column; }
.figures dt { font-size: 11px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.figures dd { margin: 0; font-weight: 600; font-variant-numeric: tabular-nums; }
.nights { border-collapse: collapse; margin: 0 0 10px; font-size: 13px; }
.nights caption { text-align: left; font-weight: 600; padding-bottom: 2px; }
.nights th { font-size: 11px; color: var(--muted); font-weight: normal; text-transform: uppercase;
  letter-spacing: .04em; text-align: left; padding: 0 14px 2px 0; }
.nights td { padding: 1px 14px 1px 0; }
.nights td.num { text-align: right; font-variant-numeric: tabular-nums; }
.bar { flex: 1 1 200px; height: 8px; background: var(--line); border-radius: 4px; overflow: hidden; }
.bar span { display: block; height: 100%; background: var(--running); }
.summary { margin: 4px 0 8px; }
.ok-text { color: var(--done); font-weight: 600; }
.stale-text, .failed-text { color: var(--failed); font-weight: 600; }
.missing-text { color: #b07100; font-weight: 600; }
.legend { list-style: none; padding: 0; margin: 0 0 20px; display: flex; flex-wrap: wrap; gap: 6px 18px;
  font-size: 13px; }
.legend li { display: flex; align-items: center; gap: 6px; }
.legend .cell { width: 14px; height: 14px; }
section.account { background: #fff; border: 1px solid var(--line); border-radius: 8px;
  padding: 14px 18px 6px; margin: 0 0 18px; }
.site { display: grid; grid-template-columns: 330px 1fr; gap: 24px; padding: 10px 0 8px;
  border-top: 1px solid var(--line); }
h2 + .site { border-top: 0; }
.site.is-stale .about { border-left: 3px solid var(--failed); padding-left: 8px; margin-left: -11px; }
.name { font-weight: 600; font-size: 15px; overflow-wrap: anywhere; }
.code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px;
  background: #eef0f3; padding: 0 5px; border-radius: 4px; }
.zone { font-size: 12px; }
.complete { font-size: 13px; }
.badge { display: inline-block; padding: 0 7px; border-radius: 4px; font-size: 11px; font-weight: 700;
  letter-spacing: .05em; vertical-align: 2px; }
.badge.stale { background: var(--failed); color: #fff; }
.grid { display: grid; grid-template-columns: repeat(30, 22px); gap: 3px; }
.cell { display: inline-block; width: 22px; height: 22px; border-radius: 3px; }
.cell.done { background: var(--done); }
.cell.failed { background: var(--failed); }
.cell.running { background: var(--running); }
.cell.stale { background: #7b2cbf; }
.cell.missing { background: var(--missing); }
.cell.missing.beyond { background: var(--beyond); }
.cell.not-ended { background: repeating-linear-gradient(45deg, #f1f3f5 0 3px, #dde1e6 3px 6px);
  border: 1px solid #ced4da; }
.labels { margin-top: 3px; font-size: 11px; color: var(--muted); }
.labels span { white-space: nowrap; border-left: 1px solid #ced4da; padding-left: 3px; }
.failed-days { list-style: none; margin: 8px 0 0; padding: 0; font-size: 13px; }
.failed-days li { display: grid; grid-template-columns: 90px 80px 1fr; gap: 8px; padding: 2px 0; }
.failed-days .date { color: var(--failed); font-weight: 600; font-variant-numeric: tabular-nums; }
.failed-days .error { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px;
  overflow-wrap: anywhere; white-space: pre-wrap; }
.missing-days { margin: 6px 0 4px; font-size: 13px; }
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::fixture::{
        account, earlier_run, last_run, progress, site, snapshot, HEALTHY,
    };
    use crate::status::DAYS_SHOWN;
    use chrono_tz::America::{Chicago, New_York};

    fn occurrences(haystack: &str, needle: &str) -> usize {
        haystack.matches(needle).count()
    }

    #[test]
    fn a_hostile_site_name_and_error_are_shown_as_text_not_markup() {
        let mut hostile = site(
            "<script>alert(1)</script>",
            "<script>alert('name')</script> & Sons",
            Chicago,
            "......................f......n",
            "<script>alert(\"error\")</script>",
        );
        hostile.days[0].error = Some("<img src=x onerror=alert(2)>".to_owned());
        let html = render(&snapshot(vec![account("<b>Chain</b>", vec![hostile])]));

        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<b>Chain"), "{html}");
        assert!(html.contains("&lt;script&gt;alert('name')&lt;/script&gt; &amp; Sons"));
        assert!(html.contains("&lt;script&gt;alert(&quot;error&quot;)&lt;/script&gt;"));
        assert!(html.contains("&lt;b&gt;Chain&lt;/b&gt;"));
    }

    #[test]
    fn every_site_shows_one_cell_per_day_with_its_state_oldest_first() {
        let s = site(
            "N01",
            "Main Street",
            Chicago,
            "mmmm......f.....m.r..........n",
            "HTTP 500",
        );
        let first_date = s.days[0].date;
        let html = render(&snapshot(vec![account("North", vec![s])]));

        assert_eq!(occurrences(&html, "data-date="), DAYS_SHOWN);
        // The first four days are missing but older than catch-up: greyed.
        assert_eq!(
            occurrences(&html, r#"class="cell missing beyond" data-date"#),
            4
        );
        assert_eq!(occurrences(&html, r#"class="cell missing" data-date"#), 1);
        assert_eq!(occurrences(&html, r#"class="cell failed" data-date"#), 1);
        assert_eq!(occurrences(&html, r#"class="cell running" data-date"#), 1);
        assert_eq!(occurrences(&html, r#"class="cell not-ended" data-date"#), 1);
        assert_eq!(occurrences(&html, r#"class="cell done" data-date"#), 22);
        assert_eq!(occurrences(&html, r#"data-state="not_ended""#), 1);
        let first_cell = html.find("data-date=").unwrap();
        assert!(html[first_cell..].starts_with(&format!("data-date=\"{first_date}\"")));
    }

    #[test]
    fn a_failed_day_shows_its_error_on_hover_and_in_the_list_below() {
        let s = site(
            "N01",
            "Main Street",
            Chicago,
            "..........................f..n",
            "HTTP 503 after 5 attempts",
        );
        let date = s.failed[0].date;
        let html = render(&snapshot(vec![account("North", vec![s])]));

        let cell = format!(r#"data-date="{date}" data-state="failed" title=""#);
        let at = html.find(&cell).expect("the failed cell") + cell.len();
        let title = &html[at..at + html[at..].find('"').unwrap()];
        assert!(title.contains("HTTP 503 after 5 attempts"), "{title}");
        assert!(html.contains(r#"<span class="error">HTTP 503 after 5 attempts</span>"#));
    }

    #[test]
    fn the_stale_badge_marks_exactly_the_stale_sites() {
        let fresh = site("N01", "Fresh", Chicago, HEALTHY, "");
        let old = site(
            "N02",
            "Behind",
            Chicago,
            "....................mmmmmmmmmn",
            "",
        );
        let never = site(
            "S01",
            "Never",
            New_York,
            &format!("{}n", "m".repeat(29)),
            "",
        );
        assert!(!fresh.stale && old.stale && never.stale);
        let html = render(&snapshot(vec![
            account("North", vec![fresh, old]),
            account("South", vec![never]),
        ]));

        assert_eq!(occurrences(&html, ">STALE<"), 2);
        let badge_after = |code: &str| {
            let row = html.find(&format!(r#"data-site="{code}""#)).unwrap();
            let end = html[row..].find("class=\"history\"").unwrap();
            html[row..row + end].contains(">STALE<")
        };
        assert!(!badge_after("N01"));
        assert!(badge_after("N02"));
        assert!(badge_after("S01"));
        assert!(html.contains("no complete day yet"));
    }

    #[test]
    fn the_header_shows_the_next_run_in_the_schedule_zone_and_the_runs() {
        let mut snap = snapshot(vec![account(
            "North",
            vec![site("N01", "Main", Chicago, HEALTHY, "")],
        )]);
        snap.current_run = Some(progress(40, 10));
        let html = render(&snap);

        assert!(html.contains("next run 2026-11-30 03:30 CST"), "{html}");
        assert!(html.contains("<title>sonnys-etl status</title>"));
        assert!(html.contains("site-days finished"));
        assert!(html.contains("width: 25%"));
        assert!(html.contains("about 12m left (forecast)"), "{html}");
        assert!(html.contains("12,345"));
        assert!(html.contains("14m 3s"));
    }

    #[test]
    fn the_last_nights_are_a_row_each_newest_first() {
        let mut snap = snapshot(vec![account(
            "North",
            vec![site("N01", "Main", Chicago, HEALTHY, "")],
        )]);
        snap.recent_runs = vec![last_run(), earlier_run(1, RunOutcome::Ok, 40, 40)];
        let html = render(&snap);

        assert_eq!(occurrences(&html, "<tr><td>"), 2, "{html}");
        let newest = html.find("2026-11-29 03:30 CST</td>").expect("newest run");
        let older = html.find("2026-11-28 03:30 CST</td>").expect("older run");
        assert!(newest < older);
        assert!(html.contains("38 / 40"), "{html}");
    }
}
