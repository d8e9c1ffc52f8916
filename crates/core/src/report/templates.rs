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
