//! `sonnys-etl status`: the status page's picture for a terminal (`table`)
//! or for tools (`json`).
//!
//! Site names and errors come from outside; in the table they are kept to
//! one line and control characters are shown escaped, so that no text can
//! move the cursor or recolour the terminal.

use std::io::Write;

use super::format::{about, count, day_ranges_text, elapsed, limit, local, plural};
use super::{RunFigures, SiteStatus, Snapshot};

/// The snapshot for people: a header with the next run, the last run and
/// the last nights' runs, a block per account and site, and a footer on
/// stale sites.
pub fn table(snapshot: &Snapshot, out: &mut impl Write) -> std::io::Result<()> {
    let zone = snapshot.schedule_timezone;
    let next = match snapshot.next_run {
        Some(at) => format!("next run {}", local(at, zone)),
        None => "no scheduled run".to_owned(),
    };
    writeln!(
        out,
        "{next}  (generated {})",
        local(snapshot.generated_at, zone)
    )?;
    if let Some(run) = &snapshot.current_run {
        let left = run
            .left_seconds
            .map(|s| format!(", about {} left (forecast)", about(s)))
            .unwrap_or_default();
        writeln!(
            out,
            "running since {}: {} of {} site-days finished{left}",
            local(run.started_at, zone),
            count(run.finished),
            count(run.site_days)
        )?;
    }
    match &snapshot.last_run {
        Some(run) => {
            writeln!(
                out,
                "last run {}, finished {} after {}: {} done, {} failed of {} site-days",
                run.outcome,
                local(run.finished_at, zone),
                elapsed(run.finished_at - run.started_at),
                count(run.done),
                count(run.failed),
                count(run.site_days),
            )?;
            writeln!(
                out,
                "  {} transactions ({} new, {} changed); {} pages, {} requests, {} rate-limited (429)",
                count(run.transactions),
                count(run.inserted),
                count(run.updated),
                count(run.pages),
                count(run.requests),
                count(run.rate_limited),
            )?;
        }
        None => writeln!(out, "no finished run yet")?,
    }
    if !snapshot.recent_runs.is_empty() {
        writeln!(out, "last nights:")?;
        for run in &snapshot.recent_runs {
            writeln!(out, "  {}", history_line(run, zone))?;
        }
    }

    for account in &snapshot.accounts {
        writeln!(out)?;
        writeln!(out, "{}", one_line(&account.name))?;
        let code_width = account
            .sites
            .iter()
            .map(|s| one_line(&s.code).chars().count())
            .max()
            .unwrap_or(0);
        for site in &account.sites {
            site_block(snapshot, site, code_width, out)?;
        }
        if account.sites.is_empty() {
            writeln!(out, "  no site")?;
        }
        if let Some(backfill) = &account.backfill {
            writeln!(out, "  {}", backfill.describe())?;
            if let Some(risk) = backfill.describe_at_risk() {
                writeln!(out, "  warning: {risk}")?;
            }
        }
        if let Some(lookback) = &account.lookback {
            writeln!(out, "  {}", lookback.describe())?;
        }
        for p in &account.people {
            let zone = snapshot.schedule_timezone;
            writeln!(
                out,
                "  {}: last export {}, newest record {}{}",
                p.data,
                p.last_done_at
                    .map_or("never done".to_owned(), |t| local(t, zone)),
                p.latest_record_at
                    .map_or("none".to_owned(), |t| local(t, zone)),
                p.last_error
                    .as_deref()
                    .map(|e| format!("; last attempt FAILED: {}", one_line(e)))
                    .unwrap_or_default()
            )?;
        }
    }

    writeln!(out)?;
    let sites: usize = snapshot.accounts.iter().map(|a| a.sites.len()).sum();
    let stale: Vec<String> = snapshot
        .stale_sites()
        .map(|(a, s)| format!("{}/{}", one_line(&a.name), one_line(&s.code)))
        .collect();
    let stale_after = limit(snapshot.stale_after_seconds);
    if stale.is_empty() {
        writeln!(
            out,
            "no site stale (limit {stale_after}, {})",
            plural(sites, "site", "sites")
        )
    } else {
        writeln!(
            out,
            "{} of {} stale (no complete data within {stale_after}): {}",
            stale.len(),
            plural(sites, "site", "sites"),
            stale.join(", ")
        )
    }
}

/// One run of the history, e.g. `2026-11-29 03:30 CST  failed  14m 3s
/// 38/40 site-days  131 requests`.
fn history_line(run: &RunFigures, zone: chrono_tz::Tz) -> String {
    format!(
        "{}  {:<11}  {:>9}  {}/{} site-days  {} {}",
        local(run.started_at, zone),
        run.outcome,
        elapsed(run.finished_at - run.started_at),
        count(run.done),
        count(run.site_days),
        count(run.requests),
        if run.requests == 1 {
            "request"
        } else {
            "requests"
        },
    )
}

fn site_block(
    snapshot: &Snapshot,
    site: &SiteStatus,
    code_width: usize,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let code = one_line(&site.code);
    let indent = " ".repeat(2 + code_width + 2);
    write!(
        out,
        "  {code:<code_width$}  {}  ({})",
        one_line(&site.name),
        site.timezone.name()
    )?;
    if site.stale {
        write!(out, "  STALE")?;
    }
    writeln!(out)?;

    let last_done = site
        .last_done
        .map_or_else(|| "none".to_owned(), |d| d.to_string());
    let complete = match site.data_complete_until {
        Some(at) => format!("data complete until {}", local(at, site.timezone)),
        None => "no complete day yet".to_owned(),
    };
    writeln!(out, "{indent}last done {last_done}, {complete}")?;

    if !site.missing.is_empty() {
        writeln!(
            out,
            "{indent}missing {} in the last {}: {}",
            plural(site.missing.len(), "day", "days"),
            snapshot.catch_up_days,
            day_ranges_text(&site.missing)
        )?;
    }
    if !site.stale_days.is_empty() {
        writeln!(
            out,
            "{indent}stale   {} (left running by a process that is gone; redone next run)",
            day_ranges_text(&site.stale_days)
        )?;
    }
    if site.rejected > 0 {
        writeln!(
            out,
            "{indent}quarantined {} in sonnys.rejected_records",
            plural(
                usize::try_from(site.rejected).unwrap_or(0),
                "record",
                "records"
            )
        )?;
    }
    for failed in &site.failed {
        writeln!(
            out,
            "{indent}failed  {} ({}): {}",
            failed.date,
            plural(
                usize::try_from(failed.attempts).unwrap_or(0),
                "attempt",
                "attempts"
            ),
            one_line(&failed.error)
        )?;
    }
    Ok(())
}

/// Outside text on one line, its control characters escaped.
fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// The snapshot for tools: pretty-printed JSON, as the types serialise.
pub fn json(snapshot: &Snapshot, out: &mut impl Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, snapshot)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::states::RunOutcome;
    use crate::status::fixture::{
        account, earlier_run, last_run, progress, site, snapshot, HEALTHY,
    };
    use chrono_tz::America::{Chicago, New_York};

    fn table_text(snapshot: &Snapshot) -> String {
        let mut out = Vec::new();
        table(snapshot, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The lines of the block of site `code`, up to the next site or account.
    fn block<'a>(text: &'a str, code: &str) -> Vec<&'a str> {
        let mut lines = text
            .lines()
            .skip_while(|l| !l.trim_start().starts_with(&format!("{code} ")));
        let head = lines.next().unwrap_or_else(|| panic!("no site {code}"));
        std::iter::once(head)
            .chain(lines.take_while(|l| l.starts_with("      ")))
            .collect()
    }

    #[test]
    fn the_header_names_the_next_run_in_the_schedule_zone() {
        let mut snap = snapshot(vec![account(
            "North",
            vec![site("N01", "Main", Chicago, HEALTHY, "")],
        )]);
        snap.current_run = Some(progress(40, 10));
        let text = table_text(&snap);
        let mut lines = text.lines();

        assert!(lines
            .next()
            .unwrap()
            .starts_with("next run 2026-11-30 03:30 CST"));
        assert_eq!(
            lines.next().unwrap(),
            "running since 2026-11-29 08:30 CST: 10 of 40 site-days finished, about 12m left (forecast)"
        );
        let last = lines.next().unwrap();
        assert!(last.starts_with("last run failed"), "{last}");
        assert!(
            last.contains("after 14m 3s: 38 done, 2 failed of 40"),
            "{last}"
        );
        let figures = lines.next().unwrap();
        assert!(figures.contains("12,345 transactions"), "{figures}");
        assert!(figures.contains("3 rate-limited (429)"), "{figures}");
    }

    #[test]
    fn the_last_nights_show_one_line_per_run_newest_first() {
        let mut snap = snapshot(vec![account(
            "North",
            vec![site("N01", "Main", Chicago, HEALTHY, "")],
        )]);
        snap.recent_runs = vec![
            last_run(),
            earlier_run(1, RunOutcome::Ok, 40, 40),
            earlier_run(2, RunOutcome::Interrupted, 12, 40),
        ];
        let text = table_text(&snap);
        let history: Vec<&str> = text
            .lines()
            .skip_while(|l| *l != "last nights:")
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .collect();

        assert_eq!(
            history,
            [
                "  2026-11-29 03:30 CST  failed          14m 3s  38/40 site-days  131 requests",
                "  2026-11-28 03:30 CST  ok               1m 5s  40/40 site-days  12 requests",
                "  2026-11-27 03:30 CST  interrupted      1m 5s  12/40 site-days  12 requests",
            ]
        );
    }

    #[test]
    fn without_a_finished_run_there_is_no_history() {
        let mut snap = snapshot(vec![account(
            "North",
            vec![site("N01", "Main", Chicago, HEALTHY, "")],
        )]);
        snap.last_run = None;
        snap.recent_runs = Vec::new();
        let text = table_text(&snap);

        assert!(text.contains("no finished run yet"), "{text}");
        assert!(!text.contains("last nights"), "{text}");
    }

    #[test]
    fn a_failed_day_shows_its_date_and_last_error() {
        let s = site(
            "N01",
            "Main Street",
            Chicago,
            "....................f........n",
            "HTTP 503: job did not finish in 60s",
        );
        let date = s.failed[0].date;
        let text = table_text(&snapshot(vec![account("North", vec![s])]));

        let lines = block(&text, "N01");
        assert!(
            lines.iter().any(|l| l.trim_start()
                == format!("failed  {date} (3 attempts): HTTP 503: job did not finish in 60s")),
            "{text}"
        );
    }

    #[test]
    fn missing_days_are_counted_and_compressed_into_ranges() {
        let s = site(
            "N01",
            "Main Street",
            Chicago,
            "..................mmm..m.mm..n",
            "",
        );
        let m = s.missing.clone();
        let text = table_text(&snapshot(vec![account("North", vec![s])]));

        let expected = format!(
            "missing 6 days in the last 14: {}..{}, {}, {}..{}",
            m[0], m[2], m[3], m[4], m[5]
        );
        assert!(
            block(&text, "N01")
                .iter()
                .any(|l| l.trim_start() == expected),
            "{text}"
        );
    }

    #[test]
    fn stale_sites_are_flagged_and_counted_in_the_footer() {
        let text = table_text(&snapshot(vec![
            account(
                "North",
                vec![
                    site("N01", "Fresh", Chicago, HEALTHY, ""),
                    site(
                        "N02",
                        "Behind",
                        Chicago,
                        "....................mmmmmmmmmn",
                        "",
                    ),
                ],
            ),
            account(
                "South",
                vec![site(
                    "S01",
                    "Never",
                    New_York,
                    &format!("{}n", "m".repeat(29)),
                    "",
                )],
            ),
        ]));

        assert!(!block(&text, "N01")[0].contains("STALE"), "{text}");
        assert!(block(&text, "N02")[0].ends_with("STALE"), "{text}");
        assert!(block(&text, "S01")[0].ends_with("STALE"), "{text}");
        assert!(block(&text, "S01")[1].contains("no complete day yet"));
        assert!(block(&text, "N01")[1].contains("data complete until 2026-11-29 00:00 CST"));
        assert_eq!(
            text.lines().last().unwrap(),
            "2 of 3 sites stale (no complete data within 36h): North/N02, South/S01"
        );
    }

    #[test]
    fn with_no_stale_site_the_footer_says_so() {
        let text = table_text(&snapshot(vec![account(
            "North",
            vec![site("N01", "Fresh", Chicago, HEALTHY, "")],
        )]));
        assert_eq!(
            text.lines().last().unwrap(),
            "no site stale (limit 36h, 1 site)"
        );
    }

    #[test]
    fn outside_text_cannot_break_lines_or_drive_the_terminal() {
        let s = site(
            "N01",
            "Main\nStreet",
            Chicago,
            "............................fn",
            "bad\n\u{1b}[31mred",
        );
        let text = table_text(&snapshot(vec![account("North", vec![s])]));
        assert!(!text.contains('\u{1b}'));
        assert!(
            text.contains("N01  Main Street  (America/Chicago)"),
            "{text}"
        );
        assert!(text.contains(r"bad \u{1b}[31mred"), "{text}");
    }

    #[test]
    fn json_carries_the_whole_snapshot() {
        let snap = snapshot(vec![account(
            "North",
            vec![site(
                "N01",
                "Main",
                Chicago,
                "............................fn",
                "HTTP 500",
            )],
        )]);
        let mut out = Vec::new();
        json(&snap, &mut out).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();

        assert_eq!(value["schedule_timezone"], "America/Chicago");
        let site = &value["accounts"][0]["sites"][0];
        assert_eq!(site["days"].as_array().unwrap().len(), 30);
        assert_eq!(site["days"][29]["state"], "not_ended");
        assert_eq!(site["failed"][0]["error"], "HTTP 500");
        assert_eq!(site["stale"], false);
    }
}
