//! What a greeting is made from, and the prompt that asks the LLM for it.
//!
//! The prompt addresses the customer by family name and title only (张女士); the phone number,
//! the full name and the customer code never go into it. Beyond that it carries only what the
//! institution's [`Sharing`] allows (by default the names of treatments and their doctors,
//! nothing sensitive), and free text (tags, notes) goes without its digits and cut short.

use chrono::{Datelike, NaiveDate};

use crate::domain::greeting::GreetingContext;
use crate::domain::{
    followup::Occasion,
    privacy::without_digits,
    sharing::{Share, Sharing},
};

/// How much of a tag and of the notes goes into a prompt.
const MAX_TAG_CHARS: usize = 12;
const MAX_NOTE_CHARS: usize = 60;
/// How many consultation records a prompt lists.
const MAX_CONSULTATIONS: usize = 3;

/// The system prompt: the rules of a good revisit message of the context's occasion.
pub fn system_prompt(ctx: &GreetingContext, max_chars: usize) -> String {
    let (what, aim) = match ctx.occasion {
        Occasion::Birthday => (
            "生日回访短信",
            "可以自然地提到顾客做过的项目或为其服务的医生，让顾客感到被记得",
        ),
        Occasion::Checkin => (
            "术后关怀短信",
            "问候治疗后的恢复情况，提醒如有不适及时联系机构；这是关怀，不是营销",
        ),
        Occasion::Cycle => (
            "疗程维养提醒短信",
            "提醒上次的项目已到建议的维养时间，如有需要可预约，语气克制、不催促",
        ),
        Occasion::Winback => (
            "久未到店顾客的问候短信",
            "表达惦念、欢迎再来，不催促、不施压",
        ),
    };
    format!(
        "你是{inst}的客户关怀顾问，负责给顾客写{what}。要求：\n\
         1. 只用简体中文，只输出短信正文，不要引号、标题或解释；\n\
         2. 全文不超过{max}个字（含标点）；\n\
         3. 语气温暖真诚、专业克制，用“您”称呼；\n\
         4. {aim}；\n\
         5. 不得提及任何病症、皮肤问题或其他健康隐私，不承诺疗效，不报价格，不推销；\n\
         6. 不要包含电话号码、链接或表情符号。",
        inst = ctx.institution_name,
        max = max_chars
    )
}

/// The user prompt: the customer's side of the story, as far as `sharing` lets it leave.
pub fn user_prompt(ctx: &GreetingContext, sharing: &Sharing) -> String {
    let dated = |date: NaiveDate| {
        if sharing.allows(Share::Dates) {
            format!("{date} ")
        } else {
            String::new()
        }
    };
    let done_on = |date: NaiveDate| {
        if sharing.allows(Share::Dates) {
            format!("{date} 做的")
        } else {
            String::new()
        }
    };
    let mut s = format!("顾客称呼：{}\n", ctx.salutation());
    let (month, day) = (ctx.occasion_date.month(), ctx.occasion_date.day());
    match (ctx.occasion, ctx.lunar_birthday) {
        (Occasion::Birthday, Some(l)) => s.push_str(&format!(
            "生日：农历{}（今年是{month}月{day}日），顾客过农历生日\n",
            l.label()
        )),
        (Occasion::Birthday, None) => s.push_str(&format!("生日：{month}月{day}日\n")),
        (_, _) => {}
    }
    // The treatment a check-in or reminder is about is what the message is for: it goes
    // whenever treatments may, its date only when dates may (the day count says enough).
    if let Some(t) = ctx
        .subject
        .as_ref()
        .filter(|_| sharing.allows(Share::Treatments))
    {
        let doctor = t
            .doctor_name
            .as_deref()
            .map(|d| format!("，{d}医生"))
            .unwrap_or_default();
        match (ctx.occasion, ctx.day_offset) {
            (Occasion::Checkin, Some(n)) => s.push_str(&format!(
                "本次关怀：{}{}{doctor}，今天是第{n}天\n",
                done_on(t.date),
                t.item_name
            )),
            (Occasion::Cycle, _) => s.push_str(&format!(
                "本次提醒：{}{}{doctor}，已到建议的维养时间\n",
                done_on(t.date),
                t.item_name
            )),
            _ => {}
        }
    }
    if let Some(v) = ctx
        .vip_level
        .as_ref()
        .filter(|_| sharing.allows(Share::VipLevel))
    {
        s.push_str(&format!("会员等级：{v}\n"));
    }
    // Free text typed by staff may hold numbers (phones, ID numbers, amounts): none leave.
    let tags: Vec<String> = ctx
        .tags
        .iter()
        .map(|t| without_digits(t, MAX_TAG_CHARS))
        .collect();
    if !tags.is_empty() && sharing.allows(Share::Tags) {
        s.push_str(&format!("顾客标签：{}\n", tags.join("、")));
    }
    if let Some(n) = ctx.notes.as_ref().filter(|_| sharing.allows(Share::Notes)) {
        let n = without_digits(n, MAX_NOTE_CHARS);
        s.push_str(&format!("服务备注（仅供参考，勿在短信中提及）：{n}\n"));
    }
    if !ctx.consultations.is_empty() && sharing.allows(Share::Consultations) {
        s.push_str("近期咨询（了解顾客关注点，勿推销、勿在短信中提及咨询内容）：\n");
        for c in ctx.consultations.iter().take(MAX_CONSULTATIONS) {
            let projects = if c.projects.is_empty() {
                "未指明项目".to_owned()
            } else {
                c.projects.join("、")
            };
            let outcome = c
                .outcome
                .as_deref()
                .map(|o| format!("（{}）", without_digits(o, MAX_TAG_CHARS)))
                .unwrap_or_default();
            s.push_str(&format!("- {}咨询：{projects}{outcome}\n", dated(c.date)));
        }
        if let Some(content) = ctx.consultations[0].content.as_deref() {
            s.push_str(&format!(
                "最近一次咨询备注（仅供参考，勿在短信中提及）：{}\n",
                without_digits(content, MAX_NOTE_CHARS)
            ));
        }
    }
    if !sharing.allows(Share::Treatments) {
        // Nothing of the history leaves: the greeting is a plain one.
    } else if ctx.history.is_empty() {
        s.push_str("消费记录：暂无\n");
    } else {
        s.push_str("近期消费：\n");
        for h in ctx.history.iter().take(5) {
            let doctor = h
                .doctor_name
                .as_deref()
                .map(|d| format!("，{d}医生"))
                .unwrap_or_default();
            s.push_str(&format!(
                "- {}{}（{}{}）\n",
                dated(h.date),
                h.item_name,
                if h.item_type == "project" {
                    "项目"
                } else {
                    "产品"
                },
                doctor
            ));
        }
    }
    s.push_str(match ctx.occasion {
        Occasion::Birthday => "请写一条生日回访短信。",
        Occasion::Checkin => "请写一条术后关怀短信。",
        Occasion::Cycle => "请写一条疗程维养提醒短信。",
        Occasion::Winback => "顾客已有一段时间没有到店，请写一条问候短信。",
    });
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::{
        greeting::{ConsultationNote, HistoryItem},
        lunar::LunarBirthday,
    };

    pub fn sample() -> GreetingContext {
        GreetingContext {
            institution_code: "BJ-HM-001".into(),
            institution_name: "北京华美医美诊所".into(),
            institution_timezone: None,
            full_name: "张三丰".into(),
            gender: Some("女".into()),
            occasion_date: NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
            lunar_birthday: None,
            occasion: Occasion::Birthday,
            subject: None,
            day_offset: None,
            vip_level: Some("金卡".into()),
            tags: vec!["敏感肌".into(), "抗衰老".into()],
            notes: Some("皮肤敏感".into()),
            history: vec![
                HistoryItem {
                    order_number: "O2".into(),
                    item_code: "PRJ-001".into(),
                    date: NaiveDate::from_ymd_opt(2026, 9, 1).unwrap(),
                    item_type: "project".into(),
                    item_name: "水光针".into(),
                    amount_cents: 252_000,
                    doctor_name: Some("李明".into()),
                },
                HistoryItem {
                    order_number: "O1".into(),
                    item_code: "PRJ-002".into(),
                    date: NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(),
                    item_type: "project".into(),
                    item_name: "光子嫩肤".into(),
                    amount_cents: 180_000,
                    doctor_name: Some("李明".into()),
                },
            ],
            consultations: Vec::new(),
        }
    }

    #[test]
    fn salutation_uses_family_name_and_title() {
        let mut c = sample();
        assert_eq!(c.salutation(), "张女士");
        c.full_name = "欧阳娜娜".into();
        c.gender = Some("男".into());
        assert_eq!(c.salutation(), "欧阳先生");
        c.gender = None;
        assert_eq!(c.salutation(), "尊敬的顾客");
    }

    #[test]
    fn free_text_goes_without_digits() {
        let mut c = sample();
        c.notes = Some("客户手机13912345678，2025年3月对利多卡因过敏".into());
        c.tags = vec!["VIP8888".into()];
        let p = user_prompt(&c, &all());
        assert!(
            !p.contains("1391") && !p.contains("2025") && !p.contains("8888"),
            "{p}"
        );
        assert!(p.contains("客户手机＊，＊年＊月"), "{p}");
        assert!(p.contains("VIP＊"), "{p}");
    }

    #[test]
    fn a_lunar_birthday_is_named_as_such() {
        let mut c = sample();
        assert!(user_prompt(&c, &all()).contains("生日：11月28日"));
        c.lunar_birthday = LunarBirthday::new(10, 10, false);
        let p = user_prompt(&c, &all());
        assert!(p.contains("农历十月初十（今年是11月28日）"), "{p}");
    }

    #[test]
    fn a_check_in_names_the_treatment_and_the_day() {
        let mut c = sample();
        c.occasion = Occasion::Checkin;
        c.subject = Some(c.history[0].clone());
        c.day_offset = Some(3);
        let p = user_prompt(&c, &all());
        assert!(
            p.contains("本次关怀：2026-09-01 做的水光针，李明医生，今天是第3天"),
            "{p}"
        );
        assert!(p.ends_with("请写一条术后关怀短信。"), "{p}");
        assert!(!p.contains("生日"), "{p}");
        assert!(system_prompt(&c, 70).contains("术后关怀短信"));
    }

    #[test]
    fn consultations_name_projects_and_keep_their_notes_for_reference() {
        let mut c = sample();
        assert!(!user_prompt(&c, &all()).contains("咨询"));
        c.consultations = vec![
            ConsultationNote {
                date: NaiveDate::from_ymd_opt(2026, 10, 8).unwrap(),
                projects: vec!["热玛吉".into(), "水光针".into()],
                content: Some("担心恢复期，电话13912345678".into()),
                outcome: Some("跟进中".into()),
            },
            ConsultationNote {
                date: NaiveDate::from_ymd_opt(2026, 5, 1).unwrap(),
                projects: vec![],
                content: None,
                outcome: None,
            },
        ];
        let p = user_prompt(&c, &all());
        assert!(
            p.contains("- 2026-10-08 咨询：热玛吉、水光针（跟进中）"),
            "{p}"
        );
        assert!(p.contains("- 2026-05-01 咨询：未指明项目"), "{p}");
        assert!(
            p.contains("最近一次咨询备注（仅供参考，勿在短信中提及）：担心恢复期，电话＊"),
            "{p}"
        );
        assert!(!p.contains("1391"), "{p}");
    }

    #[test]
    fn prompt_carries_history_but_not_the_full_name() {
        let c = sample();
        let p = user_prompt(&c, &all());
        assert!(p.contains("水光针") && p.contains("李明医生") && p.contains("金卡"));
        assert!(!p.contains("张三丰"), "{p}");
        assert_eq!(c.doctors(), vec!["李明"]);
    }

    /// Every kind of data, as an institution with its customers' separate consent may choose.
    fn all() -> Sharing {
        Sharing::of(&Share::ALL)
    }

    #[test]
    fn by_default_nothing_sensitive_leaves() {
        let mut c = sample();
        c.notes = Some("曾有轻微过敏史，注射前需皮试".into());
        c.tags = vec!["敏感肌".into(), "痘肌".into()];
        c.consultations = vec![ConsultationNote {
            date: NaiveDate::from_ymd_opt(2026, 10, 8).unwrap(),
            projects: vec!["热玛吉".into()],
            content: Some("担心恢复期".into()),
            outcome: Some("跟进中".into()),
        }];
        let p = user_prompt(&c, &Sharing::default_for_llm());
        for sensitive in [
            "过敏",
            "皮试",
            "敏感肌",
            "痘肌",
            "咨询",
            "热玛吉",
            "担心",
            "2026-",
            "金卡",
        ] {
            assert!(!p.contains(sensitive), "{sensitive} left: {p}");
        }
        // What a greeting needs still goes: who, when, and the treatments with their doctor.
        assert!(p.contains("张女士") && p.contains("生日：11月28日"), "{p}");
        assert!(p.contains("- 水光针（项目，李明医生）"), "{p}");
        // An institution that shares nothing gets a plain greeting.
        let p = user_prompt(&c, &Sharing::of(&[]));
        assert!(!p.contains("水光针") && !p.contains("李明"), "{p}");
        c.occasion = Occasion::Checkin;
        c.subject = Some(c.history[0].clone());
        c.day_offset = Some(3);
        let p = user_prompt(&c, &Sharing::default_for_llm());
        assert!(p.contains("本次关怀：水光针，李明医生，今天是第3天"), "{p}");
    }
}
