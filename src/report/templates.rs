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

const HTML: &str = include_str!("../../templates/report.html.hbs");
const TEXT: &str = include_str!("../../templates/report.txt.hbs");

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
    /// Built-in templates, with `report.html.hbs` / `report.txt.hbs` from
    /// `dir` replacing them where present.
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
        let mut html = Handlebars::new();
        html.set_strict_mode(true);
        html.register_template_string("report", source("report.html.hbs", HTML)?)
            .map_err(|e| TemplateError {
                name: "report.html.hbs".into(),
                message: e.to_string(),
            })?;
        let mut text = Handlebars::new();
        text.set_strict_mode(true);
        text.register_escape_fn(handlebars::no_escape);
        text.register_template_string("report", source("report.txt.hbs", TEXT)?)
            .map_err(|e| TemplateError {
                name: "report.txt.hbs".into(),
                message: e.to_string(),
            })?;
        let templates = Templates { html, text };
        templates.check()?;
        Ok(templates)
    }

    /// Renders a sample report with every field present.
    fn check(&self) -> Result<(), TemplateError> {
        let day = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
        let mut b = ReportBuilder::new(day, day, None);
        let mut counts = crate::counts::TlsCounts::default();
        counts.bump(crate::event::Tls::V1_0);
        b.add(
            crate::store::keys::day_number(day),
            "sample@example.com",
            &counts,
        );
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
        Ok(())
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
            "report.html.hbs",
            View::new(report, top, charts),
        )
    }

    pub fn text(&self, report: &Report, top: usize) -> Result<String, TemplateError> {
        render(
            &self.text,
            "report.txt.hbs",
            View::new(report, top, Charts::default()),
        )
    }
}

fn render(registry: &Handlebars, name: &str, view: View) -> Result<String, TemplateError> {
    registry.render("report", &view).map_err(|e| TemplateError {
        name: name.into(),
        message: e.to_string(),
    })
}
