//! Query parameters, read strictly: an unknown parameter or a bad value is a 400 that names it,
//! never silently ignored.

use std::{collections::HashMap, ops::RangeInclusive};

use axum::extract::Query;
use chrono::NaiveDate;

use super::error::{ApiError, ApiResult};

pub struct Params(HashMap<String, String>);

impl Params {
    /// The query of `uri`, with only `allowed` names.
    pub fn of(uri: &axum::http::Uri, allowed: &[&str]) -> ApiResult<Self> {
        let Query(map) = Query::<HashMap<String, String>>::try_from_uri(uri)
            .map_err(|_| ApiError::bad_param("query", "查询字符串无法解析"))?;
        if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(ApiError::bad_param(
                unknown,
                format!("未知参数 {unknown}（可用：{}）", allowed.join("、")),
            ));
        }
        Ok(Self(map))
    }

    /// A non-empty value, trimmed.
    pub fn text(&self, name: &str) -> Option<String> {
        self.0
            .get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// A whole number in `range`, or `default` when absent.
    pub fn int(&self, name: &str, range: RangeInclusive<i64>, default: i64) -> ApiResult<i64> {
        let Some(v) = self.text(name) else {
            return Ok(default);
        };
        match v.parse::<i64>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(ApiError::bad_param(
                name,
                format!(
                    "{name} 应为 {}–{} 之间的整数，收到 {v:?}",
                    range.start(),
                    range.end()
                ),
            )),
        }
    }

    pub fn opt_int(&self, name: &str) -> ApiResult<Option<i64>> {
        self.text(name)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| ApiError::bad_param(name, format!("{name} 应为整数，收到 {v:?}")))
            })
            .transpose()
    }

    pub fn bool(&self, name: &str) -> ApiResult<Option<bool>> {
        self.text(name)
            .map(|v| match v.as_str() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(ApiError::bad_param(
                    name,
                    format!("{name} 应为 true 或 false，收到 {v:?}"),
                )),
            })
            .transpose()
    }

    pub fn date(&self, name: &str) -> ApiResult<Option<NaiveDate>> {
        self.text(name)
            .map(|v| {
                NaiveDate::parse_from_str(&v, "%Y-%m-%d").map_err(|_| {
                    ApiError::bad_param(
                        name,
                        format!("{name} 应为 YYYY-MM-DD 格式的日期，收到 {v:?}"),
                    )
                })
            })
            .transpose()
    }

    /// One of `choices`, if given.
    pub fn choice(&self, name: &str, choices: &[&str]) -> ApiResult<Option<String>> {
        match self.text(name) {
            Some(v) if !choices.contains(&v.as_str()) => Err(ApiError::bad_param(
                name,
                format!("{name} 应为 {} 之一，收到 {v:?}", choices.join("、")),
            )),
            v => Ok(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(q: &str, allowed: &[&str]) -> ApiResult<Params> {
        Params::of(&format!("/x?{q}").parse().unwrap(), allowed)
    }

    #[test]
    fn unknown_and_bad_parameters_are_named() {
        let e = p("dayz=3", &["days"]).err().unwrap();
        assert_eq!(e.param.as_deref(), Some("dayz"));
        let q = p("days=abc&limit=0", &["days", "limit"]).unwrap();
        assert_eq!(
            q.int("days", 1..=366, 7).unwrap_err().param.as_deref(),
            Some("days")
        );
        assert!(q.int("limit", 1..=200, 50).is_err());
        let q = p("days=30", &["days"]).unwrap();
        assert_eq!(q.int("days", 1..=366, 7).unwrap(), 30);
        assert_eq!(q.int("absent", 1..=2, 1).unwrap(), 1);
        let q = p("d=2026-02-30&t=yes&s=x", &["d", "t", "s"]).unwrap();
        assert_eq!(q.date("d").unwrap_err().param.as_deref(), Some("d"));
        assert_eq!(q.bool("t").unwrap_err().param.as_deref(), Some("t"));
        assert_eq!(
            q.choice("s", &["a"]).unwrap_err().param.as_deref(),
            Some("s")
        );
    }
}
