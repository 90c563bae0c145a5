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
}
