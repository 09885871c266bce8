//! The status page as a browser shows it: served over HTTP, rendered by
//! headless Chromium, checked on the DOM Chromium built and on a screenshot.

use axum::response::Html;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Days, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use scraper::{ElementRef, Selector};
use sonnys_etl::status::{
    page, AccountStatus, DayCell, DayState, FailedDay, RunFigures, RunProgress, SiteStatus,
    Snapshot, DAYS_SHOWN,
};

use crate::support::chromium;

/// An error as the vendor might send it: markup and both kinds of quotes.
const HOSTILE_ERROR: &str = r#"HTTP 500: <b>upstream</b> said "no" & 'retry later'"#;

fn now() -> DateTime<Utc> {
    "2026-11-29T15:00:00Z".parse().unwrap()
}

const STALE_AFTER_SECONDS: u64 = 36 * 3600;
const CATCH_UP_DAYS: u32 = 14;

/// A site whose last 30 days, oldest first, are `pattern`: `.` done,
/// `f` failed, `r` running, `m` missing, `n` not ended.
fn site(code: &str, name: &str, timezone: Tz, pattern: &str) -> SiteStatus {
    let today = now().with_timezone(&timezone).date_naive();
    let first = today - Days::new(DAYS_SHOWN as u64 - 1);
    let days: Vec<DayCell> = pattern
        .chars()
        .enumerate()
        .map(|(i, c)| {
            let state = match c {
                '.' => DayState::Done,
                'f' => DayState::Failed,
                'r' => DayState::Running,
                's' => DayState::Stale,
                'm' => DayState::Missing,
                'n' => DayState::NotEnded,
                other => panic!("unknown day state {other:?}"),
            };
            DayCell {
                date: first + Days::new(i as u64),
                state,
                transactions: (state == DayState::Done).then_some(800 + 13 * i as i32),
                error: (state == DayState::Failed).then(|| HOSTILE_ERROR.to_owned()),
                rejected: 0,
            }
        })
        .collect();
    assert_eq!(days.len(), DAYS_SHOWN);
    let last_done = days
        .iter()
        .rev()
        .find(|d| d.state == DayState::Done)
        .map(|d| d.date);
    let data_complete_until = last_done.map(|d| end_of(d, timezone));
    let catch_up_from = today - Days::new(u64::from(CATCH_UP_DAYS));
    SiteStatus {
        code: code.to_owned(),
        name: name.to_owned(),
        timezone,
        last_done,
        data_complete_until,
        stale: data_complete_until
            .map(|t| now() - t > TimeDelta::seconds(STALE_AFTER_SECONDS as i64))
            .unwrap_or(true),
        missing: days
            .iter()
            .filter(|d| d.state == DayState::Missing && d.date >= catch_up_from)
            .map(|d| d.date)
            .collect(),
        failed: days
            .iter()
            .filter(|d| d.state == DayState::Failed)
            .map(|d| FailedDay {
                date: d.date,
                error: HOSTILE_ERROR.to_owned(),
                attempts: 3,
            })
            .collect(),
        stale_days: days
            .iter()
            .filter(|d| d.state == DayState::Stale)
            .map(|d| d.date)
            .collect(),
        rejected: 0,
        days,
    }
}

fn end_of(day: NaiveDate, timezone: Tz) -> DateTime<Utc> {
    day.succ_opt()
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_local_timezone(timezone)
        .unwrap()
        .with_timezone(&Utc)
}

/// The last run: failed, 38 of 40 site-days done.
fn last_run() -> RunFigures {
    RunFigures {
        started_at: "2026-11-29T09:30:00Z".parse().unwrap(),
        finished_at: "2026-11-29T09:44:03Z".parse().unwrap(),
        outcome: sonnys_etl::domain::states::RunOutcome::Failed,
        site_days: 40,
        done: 38,
        failed: 2,
        transactions: 12_345,
        inserted: 11_000,
        updated: 45,
        pages: 120,
        requests: 131,
        rate_limited: 3,
    }
}

/// Two chains: healthy sites, a failed day, missing days, a stale site and
/// a site that never completed a day.
fn snapshot() -> Snapshot {
    use chrono_tz::America::{Chicago, New_York};
    Snapshot {
        generated_at: now(),
        next_run: Some("2026-11-30T09:30:00Z".parse().unwrap()),
        schedule_timezone: Chicago,
        catch_up_days: CATCH_UP_DAYS,
        stale_after_seconds: STALE_AFTER_SECONDS,
        last_run: Some(last_run()),
        recent_runs: vec![
            last_run(),
            RunFigures {
                started_at: "2026-11-28T09:30:00Z".parse().unwrap(),
                finished_at: "2026-11-28T09:41:10Z".parse().unwrap(),
                outcome: sonnys_etl::domain::states::RunOutcome::Ok,
                failed: 0,
                done: 40,
                ..last_run()
            },
        ],
        // S01's day before today is being exported right now.
        current_run: Some(RunProgress {
            started_at: "2026-11-29T14:30:00Z".parse().unwrap(),
            site_days: 6,
            finished: 4,
            left_seconds: Some(95),
        }),
        accounts: vec![
            AccountStatus {
                name: "North Chain".to_owned(),
                sites: vec![
                    site(
                        "N01",
                        "Main Street",
                        Chicago,
                        "mm...........................n",
                    ),
                    site(
                        "N02",
                        "Elm & Oak",
                        Chicago,
                        "..............mm....f........n",
                    ),
                    site("N03", "Lakeside", Chicago, "..................mmmmmmmmmmmn"),
                ],
                people: Vec::new(),
                lookback: None,
                backfill: None,
            },
            AccountStatus {
                name: "South Chain".to_owned(),
                sites: vec![
                    site("S01", "Harbor", New_York, "............................rn"),
                    site(
                        "S02",
                        "New Build",
                        New_York,
                        "mmmmmmmmmmmmmmmmmmmmmmmmmmmmmn",
                    ),
                ],
                people: Vec::new(),
                lookback: None,
                backfill: None,
            },
        ],
    }
}

fn select<'a>(root: ElementRef<'a>, css: &str) -> Vec<ElementRef<'a>> {
    let selector = Selector::parse(css).unwrap_or_else(|e| panic!("selector {css}: {e}"));
    root.select(&selector).collect()
}

fn text(element: ElementRef<'_>) -> String {
    element.text().collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn chromium_renders_the_status_page_with_every_day_and_the_errors_as_text() {
    let snapshot = snapshot();
    let html = page::render(&snapshot);
    let app = Router::new().route("/", get(move || async move { Html(html) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let Some(rendered) = tokio::task::spawn_blocking(move || chromium::render(&url))
        .await
        .unwrap()
    else {
        return;
    };

    let png = std::fs::read(&rendered.screenshot).unwrap();
    let kept = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status_page.png");
    std::fs::copy(&rendered.screenshot, &kept).unwrap();
    eprintln!("screenshot: {}", kept.display());
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(png.len() > 20_000, "a blank page? {} bytes", png.len());

    let dom = scraper::Html::parse_document(&rendered.dom);
    let root = dom.root_element();
    assert_eq!(
        text(select(root, "title")[0]),
        "sonnys-etl status",
        "{}",
        rendered.dom
    );
    assert_eq!(
        text(select(root, "#next-run")[0]),
        "next run 2026-11-30 03:30 CST"
    );

    let run = text(select(root, ".run.current")[0]);
    assert!(run.contains("4 of 6 site-days finished"), "{run}");
    assert!(run.contains("about 2m left (forecast)"), "{run}");

    let nights = select(root, "table.nights tbody tr");
    assert_eq!(nights.len(), 2, "one row per night");
    let newest = text(nights[0]);
    assert!(
        newest.contains("2026-11-29 03:30 CST") && newest.contains("38 / 40"),
        "{newest}"
    );

    let sites = select(root, ".site");
    assert_eq!(sites.len(), 5);
    for site in &sites {
        let code = site.value().attr("data-site").unwrap();
        assert_eq!(select(*site, ".cell").len(), DAYS_SHOWN, "cells of {code}");
        assert_eq!(
            select(*site, ".cell.not-ended").len(),
            1,
            "today of {code} has not ended"
        );
    }

    let failed = select(root, r#"[data-site="N02"] .cell.failed"#);
    assert_eq!(failed.len(), 1);
    let title = failed[0].value().attr("title").unwrap();
    assert!(title.contains(HOSTILE_ERROR), "{title}");
    assert_eq!(failed[0].value().attr("data-state"), Some("failed"));

    // The error is shown below the grid as text: no element came out of it.
    let shown = select(root, r#"[data-site="N02"] .failed-days .error"#);
    assert_eq!(shown.len(), 1);
    assert_eq!(text(shown[0]), HOSTILE_ERROR);
    assert!(select(root, "b").is_empty(), "the error injected a <b>");
    assert!(rendered.dom.contains("&lt;b&gt;upstream&lt;/b&gt;"));
    assert_eq!(
        text(select(root, r#"[data-site="N02"] .name"#)[0]),
        "N02 Elm & Oak"
    );

    let stale: Vec<&str> = select(root, ".site")
        .into_iter()
        .filter(|s| !select(*s, ".badge.stale").is_empty())
        .map(|s| s.value().attr("data-site").unwrap())
        .collect();
    assert_eq!(stale, ["N03", "S02"]);
    assert_eq!(text(select(root, ".badge.stale")[0]), "STALE");

    let missing = text(select(root, r#"[data-site="N03"] .missing-days"#)[0]);
    assert!(missing.contains("11 days missing"), "{missing}");
}
