//! Report templates (handlebars): compiled into the binary as defaults,
//! overridable from a directory so admins can brand them.
//!
//! Strict mode makes a misspelt field an error; every template is rendered
//! once against a sample report when loaded, so a typo stops the daemon at
//! start-up instead of mailing an empty field.

use super::view::{Charts, View};
use super::{Report, ReportBuilder};
use chrono::NaiveDate;
use handlebars::Handlebars;
use std::path::Path;

const HTML: &str = include_str!("../../../../templates/report.html.hbs");
const TEXT: &str = include_str!("../../../../templates/report.txt.hbs");
const ALERT_HTML: &str = include_str!("../../../../templates/alert.html.hbs");
const ALERT_TEXT: &str = include_str!("../../../../templates/alert.txt.hbs");

#[derive(Debug, thiserror::Error)]
#[error("template {name}: {message}")]
pub struct TemplateError {
    pub name: String,
    pub message: String,
}

/// The loaded templates: HTML with HTML escaping, text without.
pub struct Templates {
    html: Handlebars<'static>,
    text: Handlebars<'static>,
}

impl Templates {
    /// Built-in templates, with `report.html.hbs`, `report.txt.hbs`,
    /// `alert.html.hbs` and `alert.txt.hbs` from `dir` replacing them where
    /// present.
    pub fn load(dir: Option<&Path>) -> Result<Templates, TemplateError> {
        let source = |name: &str, builtin: &str| -> Result<String, TemplateError> {
            match dir.map(|d| d.join(name)) {
                Some(path) if path.exists() => {
                    std::fs::read_to_string(&path).map_err(|e| TemplateError {
                        name: path.display().to_string(),
                        message: e.to_string(),
                    })
                }
                _ => Ok(builtin.to_owned()),
            }
        };
        let register = |registry: &mut Handlebars, name: &str, file: &str, builtin: &str| {
            registry
                .register_template_string(name, source(file, builtin)?)
                .map_err(|e| TemplateError {
                    name: file.into(),
                    message: e.to_string(),
                })
        };
        let mut html = Handlebars::new();
        html.set_strict_mode(true);
        register(&mut html, "report", "report.html.hbs", HTML)?;
        register(&mut html, "alert", "alert.html.hbs", ALERT_HTML)?;
        let mut text = Handlebars::new();
        text.set_strict_mode(true);
        text.register_escape_fn(handlebars::no_escape);
        register(&mut text, "report", "report.txt.hbs", TEXT)?;
        register(&mut text, "alert", "alert.txt.hbs", ALERT_TEXT)?;
        let templates = Templates { html, text };
        templates.check()?;
        Ok(templates)
    }

    /// Renders a sample report with every field present (failed logins
    /// included), so that strict mode finds a misspelt field.
    fn check(&self) -> Result<(), TemplateError> {
        let day = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
        let mut b = ReportBuilder::new(day, day, None);
        let mut counts = crate::event::TlsCounts::default();
        counts.bump(crate::event::Tls::V1_0);
        let number = crate::event::time::day_number(day);
        b.add(number, "sample@example.com", &counts);
        b.add_failures(number, "guessed@example.com", 3);
        let sample = b.finish("UTC");
        self.html(
            &sample,
            1,
            Charts {
                volume: "cid:v".into(),
                tls: "cid:t".into(),
            },
        )?;
        self.text(&sample, 1)?;
        let alert = super::alert_view::sample();
        self.alert_html(&alert)?;
        self.alert_text(&alert)?;
        Ok(())
    }

    /// An alert mail's HTML part.
    pub fn alert_html(&self, view: &impl serde::Serialize) -> Result<String, TemplateError> {
        render(&self.html, "alert", "alert.html.hbs", view)
    }

    pub fn alert_text(&self, view: &impl serde::Serialize) -> Result<String, TemplateError> {
        render(&self.text, "alert", "alert.txt.hbs", view)
    }

    /// The HTML page; `charts` says where its images come from.
    pub fn html(
        &self,
        report: &Report,
        top: usize,
        charts: Charts,
    ) -> Result<String, TemplateError> {
        render(
            &self.html,
            "report",
            "report.html.hbs",
            &View::new(report, top, charts),
        )
    }

    pub fn text(&self, report: &Report, top: usize) -> Result<String, TemplateError> {
        render(
            &self.text,
            "report",
            "report.txt.hbs",
            &View::new(report, top, Charts::default()),
        )
    }
}

fn render(
    registry: &Handlebars,
    template: &str,
    file: &str,
    view: &impl serde::Serialize,
) -> Result<String, TemplateError> {
    registry.render(template, view).map_err(|e| TemplateError {
        name: file.into(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Tls, TlsCounts};
    use chrono::NaiveDate;
    use std::collections::HashMap;

    /// Two senders, one of them with messages held by the policy service.
    fn report(held: u64) -> Report {
        let day = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap_or_default();
        let counts = |n: u64| {
            let mut c = TlsCounts::default();
            c.0[Tls::V1_3.index()] = n;
            c
        };
        let senders = vec![
            ("alice@example.com".to_owned(), counts(10)),
            ("mallory@example.com".to_owned(), counts(60)),
        ];
        Report::assemble((day, day, None), "UTC", vec![counts(70)], senders)
            .with_held(&HashMap::from([("mallory@example.com".to_owned(), held)]))
    }

    #[test]
    fn the_report_shows_held_messages_only_where_any_were_held() {
        let t = Templates::load(None).unwrap();
        let (text, html) = (
            t.text(&report(20), 10).unwrap(),
            t.html(&report(20), 10, Default::default()).unwrap(),
        );
        assert!(
            text.contains("20 of them put in Postfix's hold queue"),
            "{text}"
        );
        assert!(
            text.contains("mallory@example.com  60; 0 0 0 0 60; held 20"),
            "{text}"
        );
        assert!(html.contains("20 held by the policy service"), "{html}");
        assert!(html.contains("20 held</span>"), "{html}");
        let none = t.text(&report(0), 10).unwrap();
        assert!(!none.contains("held"), "{none}");
        assert_eq!(report(20).summary.held, 20);
        assert_eq!(report(20).senders[0].held, 20, "mallory, busiest");
        assert_eq!(report(20).senders[1].held, 0);
    }
}
