//! The message used when no LLM is configured (or its texts fail the compliance check): the
//! same facts, in fixed sentences, for each occasion.

use chrono::Datelike;

use super::tidy_message;
use crate::domain::followup::Occasion;
use crate::domain::greeting::GreetingContext;

/// The richest template of the context's occasion that fits in `max_chars`.
pub fn message(ctx: &GreetingContext, max_chars: usize) -> String {
    let who = ctx.salutation();
    let inst = &ctx.institution_name;
    let mut candidates = Vec::new();
    let treated = ctx.subject.as_ref();
    match ctx.occasion {
        Occasion::Birthday => return birthday_greeting(ctx, max_chars),
        Occasion::Checkin => {
            if let (Some(t), Some(n)) = (treated, ctx.day_offset) {
                // "昨天", or the date and the day count since: never "已经1天了".
                candidates.push(if n == 1 {
                    format!(
                        "{who}，您好！您昨天在{inst}做了{}，今天恢复得还好吗？如有任何不适，请及时联系我们。",
                        t.item_name
                    )
                } else {
                    format!(
                        "{who}，您好！您{}月{}日在{inst}做了{}，到今天是第{n}天，恢复得还好吗？如有任何不适，请及时联系我们。",
                        t.date.month(),
                        t.date.day(),
                        t.item_name
                    )
                });
                candidates.push(format!(
                    "{who}，您好！{}后第{n}天，恢复得还好吗？如有不适请及时联系我们。",
                    t.item_name
                ));
            }
            candidates.push(format!(
                "{who}，您好！近来恢复得还好吗？如有任何不适，请及时联系{inst}。"
            ));
            candidates.push(format!("{who}，您好！恢复得还好吗？如有不适请联系我们。"));
        }
        Occasion::Cycle => {
            if let Some(t) = treated {
                if let Some(d) = &t.doctor_name {
                    candidates.push(format!(
                        "{who}，您好！距您上次做{}已有一段时间，到了建议的维养时间，如有需要可预约{d}医生。",
                        t.item_name
                    ));
                }
                candidates.push(format!(
                    "{who}，您好！您的{}已到建议的维养时间，如有需要欢迎预约。",
                    t.item_name
                ));
            }
            candidates.push(format!(
                "{who}，您好！已到建议的维养时间，如有需要欢迎预约{inst}。"
            ));
        }
        Occasion::Winback => {
            candidates.push(format!(
                "{who}，好久不见！{inst}一直惦记着您，期待您有空时再来坐坐。"
            ));
            candidates.push(format!("{who}，好久不见，期待再次为您服务！"));
        }
    }
    candidates
        .into_iter()
        .find(|c| c.chars().count() <= max_chars)
        .or_else(|| tidy_message(&format!("{who}，您好！"), max_chars))
        .unwrap_or_else(|| "您好！".to_owned())
}

/// The richest template that fits in `max_chars`.
pub fn birthday_greeting(ctx: &GreetingContext, max_chars: usize) -> String {
    let who = ctx.salutation();
    let inst = &ctx.institution_name;
    let mut candidates = Vec::new();
    if let (Some(project), Some(doctor)) = (ctx.last_project(), ctx.doctors().first()) {
        candidates.push(format!(
            "{who}，{inst}祝您生日快乐！感谢您上次信任{doctor}医生为您做{item}，期待再次为您服务。",
            item = project.item_name
        ));
    }
    if let Some(project) = ctx.last_project() {
        candidates.push(format!(
            "{who}，{inst}祝您生日快乐！上次的{item}感觉如何？期待再次为您服务。",
            item = project.item_name
        ));
    }
    candidates.push(format!(
        "{who}，{inst}祝您生日快乐！感谢您一直以来的信任与陪伴。"
    ));
    candidates.push(format!("{who}，祝您生日快乐，愿您美丽常在！"));
    candidates
        .into_iter()
        .find(|c| c.chars().count() <= max_chars)
        .or_else(|| tidy_message(&format!("{who}，祝您生日快乐！"), max_chars))
        .unwrap_or_else(|| "生日快乐！".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::prompt::tests::sample;

    #[test]
    fn remembers_the_treatment_and_the_doctor() {
        let g = birthday_greeting(&sample(), 70);
        assert!(
            g.contains("张女士") && g.contains("李明医生") && g.contains("水光针"),
            "{g}"
        );
        assert!(g.chars().count() <= 70);
    }

    #[test]
    fn each_occasion_has_its_own_words_and_fits() {
        let mut c = sample();
        c.occasion = Occasion::Checkin;
        c.subject = Some(c.history[0].clone());
        c.day_offset = Some(3);
        let g = message(&c, 70);
        assert!(
            g.contains("做了水光针，到今天是第3天") && g.contains("恢复"),
            "{g}"
        );
        c.day_offset = Some(1);
        let g = message(&c, 70);
        assert!(g.contains("您昨天在") && !g.contains("1天"), "{g}");
        c.day_offset = Some(3);
        c.occasion = Occasion::Cycle;
        let g = message(&c, 70);
        assert!(g.contains("维养") && g.contains("李明医生"), "{g}");
        c.occasion = Occasion::Winback;
        assert!(message(&c, 70).contains("好久不见"));
        for occasion in Occasion::ALL {
            c.occasion = occasion;
            for max in [10, 20, 30, 64] {
                let g = message(&c, max);
                assert!(g.chars().count() <= max, "{occasion:?} {max}: {g}");
                assert!(
                    crate::domain::compliance::check(
                        &g,
                        crate::domain::compliance::Limits {
                            max_chars: max,
                            allow_prices: false
                        }
                    )
                    .is_empty(),
                    "{occasion:?}: {g}"
                );
            }
        }
    }

    #[test]
    fn always_fits() {
        for max in [10, 20, 30, 70] {
            let g = birthday_greeting(&sample(), max);
            assert!(g.chars().count() <= max, "{max}: {g}");
        }
    }
}
