//! The compliance check every message passes before it is saved for sending: the word rules of
//! `config/compliance-terms.toml` (each with the provision it comes from), and three built in:
//! no phone numbers, no links, and the length limit. Pure: the caller decides what a failure
//! means (ask the LLM again, fall back to the template, refuse).

use std::sync::LazyLock;

use serde::Deserialize;

use super::names;

/// The term list, compiled into the binary.
const TERMS: &str = include_str!("../../config/compliance-terms.toml");

#[derive(Debug, Deserialize)]
struct TermFile {
    rule: Vec<TermRule>,
}

#[derive(Debug, Deserialize)]
struct TermRule {
    id: String,
    law: String,
    reason: String,
    terms: Vec<String>,
    #[serde(default)]
    allow: Vec<String>,
}

static RULES: LazyLock<Vec<TermRule>> = LazyLock::new(|| {
    toml::from_str::<TermFile>(TERMS)
        .expect("config/compliance-terms.toml is valid (a unit test reads it)")
        .rule
});

/// What the message is checked against besides the term list.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_chars: usize,
    /// The institution allows prices and discounts in its messages.
    pub allow_prices: bool,
}

/// One thing wrong with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule's id (`absolute`, `efficacy_promise`, …, `phone`, `link`, `length`).
    pub rule: String,
    /// What was found.
    pub found: String,
    /// The provision it breaks.
    pub law: String,
    /// Why, in Chinese, for staff and for the LLM's second try.
    pub reason: String,
}

impl Violation {
    /// One line: `“最好”：使用……（《广告法》第九条第（三）项）`.
    pub fn describe(&self) -> String {
        format!("“{}”：{}（{}）", self.found, self.reason, self.law)
    }
}

/// The substrings of `text` that could be another person's full name, each once: two to four
/// Chinese characters in a row that begin with a family name and do not stand in `ours` (the
/// texts the system itself wrote or gave the LLM: its prompts, the template, the opt-out text;
/// nothing there can leak a customer). These are looked up among the institution's customers.
///
/// The rule keeps the check from being turned against the chain: a customer named after a
/// phrase that every greeting says (生日快乐) matches nothing, since the phrase is the system's.
pub fn name_candidates(text: &str, ours: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out: Vec<String> = Vec::new();
    for start in 0..chars.len() {
        for len in 2..=4 {
            let Some(slice) = chars.get(start..start + len) else {
                break;
            };
            if !slice.iter().all(|c| ('\u{4E00}'..='\u{9FFF}').contains(c)) {
                break;
            }
            let s: String = slice.iter().collect();
            if names::begins_with_surname(&s) && !ours.contains(&s) && !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out
}

/// The violation for another customer's name found in a message.
pub fn other_customer_name(name: &str) -> Violation {
    Violation {
        rule: "other_customer_name".into(),
        found: crate::domain::privacy::mask_name(name),
        law: "《个人信息保护法》第十条".into(),
        reason: "含有其他客户的姓名，不得向他人披露个人信息".into(),
    }
}

/// The violation for a message that addresses the customer by the wrong name or title.
pub fn wrong_salutation(written: String, why: String) -> Violation {
    Violation {
        rule: "salutation".into(),
        found: written,
        law: "称呼须与客户本人的姓和登记的性别一致".into(),
        reason: why,
    }
}

/// Everything wrong with `text`; empty when it may be sent.
pub fn check(text: &str, limits: Limits) -> Vec<Violation> {
    let mut out = Vec::new();
    for rule in RULES.iter() {
        if rule.id == "price" && limits.allow_prices {
            continue;
        }
        // Allowed phrases are blanked out (same length, so positions stay those of `text`).
        let mut cleaned = text.to_owned();
        for a in &rule.allow {
            cleaned = cleaned.replace(a.as_str(), &"\u{3000}".repeat(a.chars().count()));
        }
        // Longer terms first: 最佳 is reported, not 最佳 and 最 again. Each place once.
        let mut terms: Vec<&String> = rule.terms.iter().collect();
        terms.sort_by_key(|t| std::cmp::Reverse(t.len()));
        let mut taken: Vec<(usize, usize)> = Vec::new();
        for term in terms {
            for (at, _) in cleaned.match_indices(term.as_str()) {
                let end = at + term.len();
                if taken.iter().any(|(a, e)| at < *e && end > *a) {
                    continue;
                }
                taken.push((at, end));
            }
        }
        // In the order they stand in the message.
        taken.sort_unstable();
        out.extend(taken.into_iter().map(|(at, end)| Violation {
            rule: rule.id.clone(),
            found: in_context(text, at, end),
            law: rule.law.clone(),
            reason: rule.reason.clone(),
        }));
    }
    if let Some(run) = digit_runs(text).into_iter().find(|r| r.len() >= 7) {
        out.push(Violation {
            rule: "phone".into(),
            found: crate::domain::privacy::mask_digit_runs(&run),
            law: "回访消息规范".into(),
            reason: "含电话号码或长串数字（号码只能由发送渠道使用）".into(),
        });
    }
    let lower = text.to_lowercase();
    if let Some(l) = [
        "http://", "https://", "www.", ".com", ".cn", "t.cn/", "网址", "链接",
    ]
    .iter()
    .find(|l| lower.contains(*l))
    {
        out.push(Violation {
            rule: "link".into(),
            found: (*l).to_owned(),
            law: "回访消息规范".into(),
            reason: "含网址或链接".into(),
        });
    }
    let chars = text.chars().count();
    if chars > limits.max_chars {
        out.push(Violation {
            rule: "length".into(),
            found: format!("{chars} 字"),
            law: "回访消息规范".into(),
            reason: format!("超过 {} 字的长度限制", limits.max_chars),
        });
    }
    out
}

/// The term at `at..end` of `text` marked 【】 in its clause: up to six characters either side,
/// never past a punctuation mark, so staff see the words it stands in (做【最】好的产品).
fn in_context(text: &str, at: usize, end: usize) -> String {
    const SIDE: usize = 6;
    let stop = |c: &char| c.is_ascii_punctuation() || "，。！？；：、（）“”‘’…—《》\n".contains(*c);
    let before: Vec<char> = text[..at]
        .chars()
        .rev()
        .take_while(|c| !stop(c))
        .take(SIDE)
        .collect();
    let after: String = text[end..]
        .chars()
        .take_while(|c| !stop(c))
        .take(SIDE)
        .collect();
    format!(
        "{}【{}】{}",
        before.iter().rev().collect::<String>(),
        &text[at..end],
        after
    )
}

/// Runs of digits, counting ASCII and full-width digits and ignoring separators inside a run.
fn digit_runs(text: &str) -> Vec<String> {
    let mut runs = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        let d = match c {
            '0'..='9' => Some(c),
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32),
            _ => None,
        };
        match d {
            Some(d) => cur.push(d),
            None if !cur.is_empty() && matches!(c, '-' | ' ' | '－') => {}
            None => {
                if !cur.is_empty() {
                    runs.push(std::mem::take(&mut cur));
                }
            }
        }
    }
    if !cur.is_empty() {
        runs.push(cur);
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        max_chars: 70,
        allow_prices: false,
    };

    fn rules(text: &str) -> Vec<String> {
        check(text, L).into_iter().map(|v| v.rule).collect()
    }

    #[test]
    fn name_candidates_are_runs_of_two_to_four_chinese_characters_that_begin_with_a_surname() {
        let c = name_candidates("张女士，王芳推荐的A项目，欧阳娜娜也来了", "");
        assert!(c.contains(&"王芳".to_owned()) && c.contains(&"张女士".to_owned()));
        assert!(c.contains(&"欧阳娜娜".to_owned()));
        assert!(!c.contains(&"推荐的".to_owned()), "推 is no family name");
        assert!(!c.iter().any(|s| s.contains('A') || s.contains('，')));
        assert!(c.iter().all(|s| (2..=4).contains(&s.chars().count())));
        assert!(name_candidates("ok", "").is_empty());
        // What the system wrote itself is never taken for a leaked name.
        let ours = "祝您生日快乐！期待再次为您服务。";
        let c = name_candidates("王女士，祝您生日快乐！期待再次为您服务，王芳", ours);
        assert!(c.contains(&"王芳".to_owned()));
        assert!(!c.iter().any(|s| ours.contains(s.as_str())));
        assert_eq!(other_customer_name("王芳").found, "王*");
    }

    #[test]
    fn the_term_list_reads_and_names_its_provisions() {
        assert!(RULES.len() >= 7);
        assert!(
            RULES
                .iter()
                .all(|r| !r.law.is_empty() && !r.terms.is_empty())
        );
    }

    #[test]
    fn a_plain_greeting_passes() {
        let text = "张女士，北京华安医疗美容诊所祝您生日快乐！感谢您上次信任李明医生为您做水光针，最近天气转凉，注意保湿。";
        assert_eq!(check(text, L), vec![]);
    }

    /// Greetings as clinics write them every day (held in tests/fixtures): no false alarm.
    #[test]
    fn ordinary_greetings_raise_no_alarm() {
        let long = Limits {
            max_chars: 200,
            allow_prices: false,
        };
        let held = include_str!("../../tests/fixtures/ordinary-greetings.txt");
        let greetings: Vec<&str> = held
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .collect();
        assert!(greetings.len() >= 40, "{}", greetings.len());
        for g in greetings {
            assert_eq!(check(g, long), vec![], "{g}");
        }
    }

    /// Messages that do break the rules (held beside them): each is caught.
    #[test]
    fn held_violations_are_each_caught() {
        let long = Limits {
            max_chars: 200,
            allow_prices: false,
        };
        let held = include_str!("../../tests/fixtures/violating-greetings.txt");
        for line in held
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        {
            let (rule, text) = line.split_once('\t').expect("rule<TAB>text");
            let got: Vec<String> = check(text, long).into_iter().map(|v| v.rule).collect();
            assert!(got.iter().any(|r| r == rule), "{rule}: {text}: {got:?}");
        }
    }

    #[test]
    fn banned_content_is_named_with_its_provision() {
        assert_eq!(rules("我们是最好的机构"), ["absolute"]);
        assert_eq!(
            rules("保证效果，无副作用"),
            ["efficacy_promise", "efficacy_promise"]
        );
        // Overlapping terms (比其他, 其他医院) are one place, reported once.
        assert_eq!(rules("比其他医院更专业"), ["comparison"]);
        assert_eq!(rules("明星同款水光针"), ["endorsement"]);
        assert_eq!(rules("看看术前术后的变化"), ["before_after"]);
        assert_eq!(rules("别再容貌焦虑了"), ["appearance_anxiety"]);
        assert_eq!(rules("生日特价，仅需999元"), ["price", "price"]);
        assert_eq!(rules("详询138-0013-8000"), ["phone"]);
        assert_eq!(rules("预约请点 https://x.cn/a"), ["link"]);
        assert_eq!(rules(&"好".repeat(71)), ["length"]);
        let v = &check("我们是最好的机构", L)[0];
        assert_eq!(v.found, "我们是【最】好的机构");
        // In its clause, each place once; the longer of two terms at one place (国家级, not 家级).
        let found: Vec<String> = check("效果最佳，国家级专家！欢迎", L)
            .into_iter()
            .map(|v| v.found)
            .collect();
        assert_eq!(found, ["效果【最】佳", "【国家级】专家"]);
        assert!(v.describe().contains("《广告法》第九条"));
    }

    #[test]
    fn an_institution_may_allow_prices() {
        let allow = Limits {
            allow_prices: true,
            ..L
        };
        assert_eq!(check("生日特价，仅需999元", allow), vec![]);
        assert!(!check("生日特价，保证满意", allow).is_empty());
    }

    #[test]
    fn allowed_phrases_and_short_numbers_pass() {
        assert_eq!(check("最近好吗？元旦快乐，3月8日见", L), vec![]);
        assert_eq!(check("祝您30岁生日快乐", L), vec![]);
    }
}
