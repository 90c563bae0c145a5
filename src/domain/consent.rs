//! Consent: who may be sent marketing messages, through which channel.
//!
//! A person can be suppressed for one channel (`sms`, `webhook`, …) or for all of them (`*`).
//! Suppressions are kept by phone number, not by customer, so that they hold across the chain's
//! institutions and for a number whose customer record has not been imported yet. An unsubscribe
//! reply (回T退订, 拒收请回复R) suppresses the channel it came back over; staff can suppress or
//! restore any channel.
//!
//! Every marketing message carries the opt-out text (`consent.opt_out_text`, by default
//! `拒收请回复R`), counted in the message's length.

/// The channel name that stands for every channel.
pub const ALL_CHANNELS: &str = "*";

/// Where a suppression came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The person replied to a message (an inbound SMS).
    Reply,
    /// Staff recorded it (the CLI or the console).
    Staff,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reply => "reply",
            Self::Staff => "staff",
        }
    }
}

/// Whether a reply asks to receive no more messages. The keywords Chinese SMS gateways and
/// carriers use (T, TD, N, R, 退订, 拒收, 取消订阅, 不要再发), as a whole reply or inside one; full-width
/// letters and surrounding punctuation are ignored.
pub fn is_unsubscribe(reply: &str) -> bool {
    let text: String = reply
        .chars()
        .map(|c| match c {
            // Full-width ASCII (Ｔ, ｔｄ) to ASCII.
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            c => c,
        })
        .filter(|c| !c.is_whitespace() && !c.is_ascii_punctuation() && !is_cjk_punctuation(*c))
        .flat_map(char::to_uppercase)
        .collect();
    matches!(text.as_str(), "T" | "TD" | "N" | "R" | "QX" | "TDQX")
        || ["退订", "拒收", "取消订阅", "不要再发", "别再发", "不再接收"]
            .iter()
            .any(|k| text.contains(k))
}

fn is_cjk_punctuation(c: char) -> bool {
    matches!(
        c,
        '\u{3000}'..='\u{303F}' | '！' | '，' | '？' | '：' | '；'
    )
}

/// The message as sent: the body, then the opt-out text (none when it is empty or already there).
pub fn with_opt_out(body: &str, opt_out_text: &str) -> String {
    let tail = opt_out_text.trim();
    if tail.is_empty() || body.ends_with(tail) {
        body.to_owned()
    } else {
        format!("{body}{tail}")
    }
}

/// Characters the opt-out text takes from a message's length limit.
pub fn opt_out_chars(opt_out_text: &str) -> usize {
    opt_out_text.trim().chars().count()
}

/// A channel name as staff may write it: `sms`, `webhook`, `wecom`, or `*` / `all`.
pub fn parse_channel(name: &str) -> Option<&'static str> {
    match name.trim() {
        "*" | "all" | "全部" => Some(ALL_CHANNELS),
        "sms" => Some("sms"),
        "webhook" => Some("webhook"),
        "wecom" => Some("wecom"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsubscribe_replies_are_recognised() {
        for yes in [
            "T",
            "t",
            "TD",
            "td ",
            "Ｔ",
            "ｔｄ",
            "R",
            "N",
            "退订",
            "回T退订",
            "请帮我退订，谢谢",
            "拒收",
            "不要再发了！",
            "TD。",
        ] {
            assert!(is_unsubscribe(yes), "{yes:?}");
        }
        for no in ["谢谢", "好的", "TDD", "Thanks", "什么时候有空？", "1", ""] {
            assert!(!is_unsubscribe(no), "{no:?}");
        }
    }

    #[test]
    fn the_opt_out_text_is_appended_once() {
        assert_eq!(
            with_opt_out("生日快乐！", "拒收请回复R"),
            "生日快乐！拒收请回复R"
        );
        assert_eq!(
            with_opt_out("生日快乐！拒收请回复R", "拒收请回复R"),
            "生日快乐！拒收请回复R"
        );
        assert_eq!(with_opt_out("生日快乐！", ""), "生日快乐！");
        assert_eq!(opt_out_chars("拒收请回复R"), 6);
    }

    #[test]
    fn channels_parse() {
        assert_eq!(parse_channel("all"), Some("*"));
        assert_eq!(parse_channel("sms"), Some("sms"));
        assert_eq!(parse_channel("fax"), None);
    }
}
