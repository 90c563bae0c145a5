//! Personal data: normalising phone numbers, and masking phones, names and notes for logs
//! and for anyone who may not see them in full.

/// A mainland mobile or other number, reduced to digits: spaces, dashes and a leading
/// `+86`/`0086` are dropped. Returns `None` when what is left is not 7 to 15 digits.
pub fn normalize_phone(raw: &str) -> Option<String> {
    let mut digits: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '\u{3000}'))
        .collect();
    if let Some(rest) = digits.strip_prefix("+86") {
        digits = rest.to_owned();
    } else if let Some(rest) = digits.strip_prefix("0086") {
        digits = rest.to_owned();
    }
    let ok = (7..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit());
    ok.then_some(digits)
}

/// `13800138000` → `138****8000`: enough to tell two customers apart, not to call one.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() < 7 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

/// `张三` → `张*`, `欧阳娜娜` → `欧***`: the family name only.
pub fn mask_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => {
            let rest = chars.count().max(1);
            format!("{first}{}", "*".repeat(rest))
        }
        None => String::new(),
    }
}

/// Masks every run of 7 or more digits in `text` (a phone number echoed in an error message).
pub fn mask_digit_runs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 7 {
            out.push_str(&mask_phone(run));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Free text fit to leave the system (for the LLM): every run of digits, ASCII or full-width,
/// becomes `＊` (phone and ID numbers, amounts, dates of treatments), and the text is cut to
/// `max_chars`.
pub fn without_digits(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    let mut in_run = false;
    for c in text.chars().take(max_chars) {
        let digit = c.is_ascii_digit() || ('０'..='９').contains(&c);
        if digit && !in_run {
            out.push('＊');
        } else if !digit {
            out.push(c);
        }
        in_run = digit;
    }
    out
}

/// What stands for a credential that was removed from a text.
pub const REDACTED: &str = "[redacted]";

/// `text` with every credential it may carry replaced by [`REDACTED`], wherever it stands (a
/// check's line, an error from a driver, a log line): the password of a URL's `user:password@`
/// (or a lone token there), the values of a URL's query string, `key=value` pairs whose key
/// names a secret (`password`, `api_key`, `token`, `secret`, …), a `Bearer` token and an
/// `sk-…` API key. What is left (scheme, host, port, path, user) still says where it points.
pub fn redact_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        // The scheme is the run of letters before `://`.
        let scheme_start = rest[..at]
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |(i, c)| i + c.len_utf8());
        out.push_str(&redact_pairs(&rest[..scheme_start]));
        let end = rest[at + 3..]
            .find(|c: char| c.is_whitespace() || "\"'<>()（），；。、【】「」`".contains(c))
            .map_or(rest.len(), |i| at + 3 + i);
        out.push_str(&redact_one_url(&rest[scheme_start..end]));
        rest = &rest[end..];
    }
    out.push_str(&redact_pairs(rest));
    out
}

/// One URL (`scheme://…`) with its credentials and query values replaced.
fn redact_one_url(url: &str) -> String {
    let (scheme, after) = url.split_once("://").unwrap_or(("", url));
    let authority_end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, tail) = after.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:{REDACTED}@{host}"),
            // A lone key before `@` (`https://sk-abc…@host`) is a credential; a short name
            // (`postgres://revisit@db`) is only a user.
            None if userinfo.starts_with("sk-") || userinfo.len() >= 20 => {
                format!("{REDACTED}@{host}")
            }
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (tail, None),
    };
    let mut out = format!("{scheme}://{authority}{path}");
    if let Some(q) = query {
        let (q, fragment) = q.split_once('#').map_or((q, None), |(q, f)| (q, Some(f)));
        let pairs: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) => format!("{k}={REDACTED}"),
                None if pair.is_empty() => String::new(),
                None => REDACTED.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
        if fragment.is_some() {
            out.push_str("#…");
        }
    }
    out
}

/// Keys whose value is a secret in `key=value` text (a libpq connection string, a form body).
const SECRET_KEYS: [&str; 10] = [
    "password",
    "passwd",
    "pwd",
    "api_key",
    "apikey",
    "access_token",
    "token",
    "secret",
    "access_key_secret",
    "key",
];

/// Text outside URLs: `password=…`-like pairs, `Bearer …` and `sk-…` keys.
fn redact_pairs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let word_end = |from: usize| {
        let mut j = from;
        while j < chars.len() && !chars[j].is_whitespace() && !"&;,'\"）)，；".contains(chars[j])
        {
            j += 1;
        }
        j
    };
    while i < chars.len() {
        let at_word_start =
            i == 0 || !(chars[i - 1].is_ascii_alphanumeric() || chars[i - 1] == '_');
        let rest: String = chars[i..chars.len().min(i + 24)].iter().collect();
        let lower = rest.to_ascii_lowercase();
        if at_word_start {
            if let Some(key) = SECRET_KEYS.iter().find(|k| {
                lower.starts_with(*k)
                    && matches!(lower[k.len()..].chars().next(), Some('=') | Some(':'))
            }) {
                let value_start = i + key.chars().count() + 1;
                let value_start = if chars.get(value_start) == Some(&' ') {
                    value_start + 1
                } else {
                    value_start
                };
                out.extend(&chars[i..value_start]);
                out.push_str(REDACTED);
                i = word_end(value_start);
                continue;
            }
            if lower.starts_with("bearer ") {
                out.push_str("Bearer ");
                out.push_str(REDACTED);
                i = word_end(i + 7);
                continue;
            }
            if lower.starts_with("sk-") && word_end(i + 3) >= i + 3 + 8 {
                out.push_str("sk-");
                out.push_str(REDACTED);
                i = word_end(i + 3);
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_digit_leaves_in_free_text() {
        assert_eq!(
            without_digits("电话13800138000，身份证１１０１０５X，2025年做过", 100),
            "电话＊，身份证＊X，＊年做过"
        );
        assert_eq!(without_digits("皮肤敏感注意产品", 4), "皮肤敏感");
    }

    #[test]
    fn normalizes_common_spellings() {
        assert_eq!(
            normalize_phone("138 0013 8000").as_deref(),
            Some("13800138000")
        );
        assert_eq!(
            normalize_phone("+86 138-0013-8000").as_deref(),
            Some("13800138000")
        );
        assert_eq!(
            normalize_phone("010-12345678").as_deref(),
            Some("01012345678")
        );
        assert_eq!(normalize_phone("13800l38000"), None);
        assert_eq!(normalize_phone("123"), None);
    }

    #[test]
    fn masks_phones_inside_messages() {
        assert_eq!(
            mask_digit_runs("invalid type: integer `13800138000`, expected a string"),
            "invalid type: integer `138****8000`, expected a string"
        );
        assert_eq!(
            mask_digit_runs("\"1990-13-01\" is not a date"),
            "\"1990-13-01\" is not a date"
        );
    }

    #[test]
    fn masks() {
        assert_eq!(mask_phone("13800138000"), "138****8000");
        assert_eq!(mask_phone("123"), "***");
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("欧阳娜娜"), "欧***");
        assert_eq!(mask_name("王"), "王*");
        assert_eq!(mask_name(""), "");
    }

    #[test]
    fn credentials_are_redacted_wherever_they_stand() {
        let cases = [
            (
                "database URL names no database: postgres://postgres:S3cretPw@db:5432",
                "database URL names no database: postgres://postgres:[redacted]@db:5432",
            ),
            (
                "deepseek-v4（https://api.example.com/v1?api_key=sk-abc123456789&x=1）",
                "deepseek-v4（https://api.example.com/v1?api_key=[redacted]&x=[redacted]）",
            ),
            (
                "postgres://u@h/db?password=S3cret&sslmode=require",
                "postgres://u@h/db?password=[redacted]&sslmode=[redacted]",
            ),
            (
                "http://admin:pw@qdrant:6334",
                "http://admin:[redacted]@qdrant:6334",
            ),
            (
                "https://sk-abcdef123456@llm/v1",
                "https://[redacted]@llm/v1",
            ),
            (
                "host=db user=revisit password=S3cret dbname=x",
                "host=db user=revisit password=[redacted] dbname=x",
            ),
            (
                "Authorization: Bearer sk-abcdef1234567890",
                "Authorization: Bearer [redacted]",
            ),
            (
                "key sk-abcdef1234567890 refused",
                "key sk-[redacted] refused",
            ),
            ("API_KEY=xyz", "API_KEY=[redacted]"),
        ];
        for (raw, want) in cases {
            assert_eq!(redact_secrets(raw), want, "{raw}");
        }
        // Nothing else changes: hosts, paths, Chinese text, words that merely contain a key.
        for kept in [
            "嵌入式引擎（data/vectors），https://clickhouse:8123/",
            "monkey=1 turkey: 2",
            "sqlite://data/revisit.db",
            "task-runner sk-short",
        ] {
            assert_eq!(redact_secrets(kept), kept);
        }
    }
}
