//! Chinese family names: how a greeting addresses a customer (张女士, 欧阳先生) and which runs of
//! a message could be someone's full name.

/// Family names: single ones that cover most of the population, and the compound ones. A run
/// of characters that does not begin with one is not taken for a person's full name.
const SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于\
蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛\
郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包\
宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司\
卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇\
桑郎甄丛仲虞敖巩明佘池查麻苑迟邝";
const COMPOUND_SURNAMES: [&str; 36] = [
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒",
    "夏侯", "轩辕", "令狐", "端木", "独孤", "南宫", "西门", "百里", "呼延", "澹台", "公羊", "赫连",
    "万俟", "闻人", "申屠", "太史", "钟离", "宗政", "濮阳", "淳于", "单于", "仲孙", "东郭", "拓跋",
];

/// The family name of `full_name`: a compound one (欧阳娜娜 → 欧阳) when a given name follows
/// it, else the first character.
pub fn surname_of(full_name: &str) -> Option<&str> {
    let name = full_name.trim();
    if let Some(s) = COMPOUND_SURNAMES
        .iter()
        .find(|s| name.starts_with(**s) && name.chars().count() > 2)
    {
        return Some(s);
    }
    name.chars().next().map(|c| &name[..c.len_utf8()])
}

/// Whether `run` begins with a family name (a compound one needs a given name after it).
pub fn begins_with_surname(run: &str) -> bool {
    COMPOUND_SURNAMES
        .iter()
        .any(|s| run.starts_with(s) && run.chars().count() > 2)
        || run.chars().next().is_some_and(|c| SURNAMES.contains(c))
}

/// Titles that follow a family name when a message addresses someone, and the gender each
/// implies.
const TITLES: [(&str, &str); 5] = [
    ("女士", "女"),
    ("小姐", "女"),
    ("太太", "女"),
    ("夫人", "女"),
    ("先生", "男"),
];

/// How a message addresses someone: the family name and the title it used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// As written: `叶女士`, `张丽女士`.
    pub written: String,
    pub surname: String,
    pub title: &'static str,
}

/// What is wrong with how `text` addresses the customer `full_name` (gender `女`, `男` or
/// unknown): another family name (叶女士 for 钱丽), a title of the other gender, or a gendered
/// title for a customer whose gender is unknown. Each wrong address once, as written and why
/// (in Chinese).
pub fn salutation_problems(
    text: &str,
    full_name: &str,
    gender: Option<&str>,
) -> Vec<(String, String)> {
    let surname = surname_of(full_name).unwrap_or_default();
    let mut out: Vec<(String, String)> = Vec::new();
    for a in addresses(text, full_name) {
        let gender_of_title = TITLES.iter().find(|(t, _)| *t == a.title).map(|(_, g)| *g);
        let why = if a.surname != surname {
            format!("称呼与客户的姓（{surname}）不符")
        } else {
            match (gender, gender_of_title) {
                (Some(g), Some(t)) if (g == "女" || g == "男") && g != t => {
                    format!("称呼与客户登记的性别（{g}）不符")
                }
                (None, Some(_)) => "客户性别未登记，不应使用女士、先生等称呼".to_owned(),
                _ => continue,
            }
        };
        let problem = (a.written, why);
        if !out.contains(&problem) {
            out.push(problem);
        }
    }
    out
}

/// Every `<family name><title>` in `text`, with a given name between them or not (叶女士,
/// 欧阳先生, 张丽女士). `full_name` written out before a title counts as its family name.
pub fn addresses(text: &str, full_name: &str) -> Vec<Address> {
    let mut out = Vec::new();
    for (title, _) in TITLES {
        for (at, _) in text.match_indices(title) {
            let before: Vec<char> = text[..at].chars().collect();
            let tail = |n: usize| -> Option<String> {
                (before.len() >= n).then(|| before[before.len() - n..].iter().collect())
            };
            let found = if !full_name.is_empty() && text[..at].ends_with(full_name) {
                surname_of(full_name).map(|s| (full_name.to_owned(), s.to_owned()))
            } else if let Some(s) = tail(2).filter(|t| COMPOUND_SURNAMES.contains(&t.as_str())) {
                Some((s.clone(), s))
            } else if let Some(s) = tail(1).filter(|t| SURNAMES.contains(t.as_str())) {
                Some((s.clone(), s))
            } else {
                // A surname and a one- or two-character given name: 叶丽女士, 叶美丽女士.
                [2, 3].iter().find_map(|n| {
                    let run = tail(*n)?;
                    let first: String = run.chars().take(1).collect();
                    (SURNAMES.contains(first.as_str()) && run.chars().all(is_han))
                        .then(|| (run.clone(), first))
                })
            };
            if let Some((name, surname)) = found {
                out.push(Address {
                    written: format!("{name}{title}"),
                    surname,
                    title,
                });
            }
        }
    }
    out
}

fn is_han(c: char) -> bool {
    ('\u{4e00}'..='\u{9fff}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_greeting_addressed_to_someone_else_is_caught() {
        let wrong = salutation_problems("叶女士，祝您生日快乐！", "钱丽", Some("女"));
        assert_eq!(
            wrong,
            vec![("叶女士".to_owned(), "称呼与客户的姓（钱）不符".to_owned())]
        );
        assert!(salutation_problems("钱女士，祝您生日快乐！", "钱丽", Some("女")).is_empty());
        assert!(salutation_problems("亲爱的钱丽女士，生日快乐", "钱丽", Some("女")).is_empty());
        assert_eq!(
            salutation_problems("亲爱的叶丽女士，生日快乐", "钱丽", Some("女")).len(),
            1
        );
        // Compound surnames: 欧阳 is the family name, not 阳.
        assert!(salutation_problems("欧阳先生，您好", "欧阳锋", Some("男")).is_empty());
        assert_eq!(
            salutation_problems("司马先生，您好", "欧阳锋", Some("男"))[0].1,
            "称呼与客户的姓（欧阳）不符"
        );
        // The title follows the gender on record; none is guessed.
        assert_eq!(
            salutation_problems("张先生，生日快乐", "张丽", Some("女"))[0].1,
            "称呼与客户登记的性别（女）不符"
        );
        assert_eq!(
            salutation_problems("张女士，生日快乐", "张丽", None)[0].0,
            "张女士"
        );
        assert!(salutation_problems("尊敬的顾客，生日快乐", "张丽", None).is_empty());
        // A doctor named in the message is not an address.
        assert!(salutation_problems("张女士，李明医生祝您生日快乐", "张丽", Some("女")).is_empty());
        // Each wrong address once.
        assert_eq!(
            salutation_problems("叶女士好！叶女士生日快乐", "钱丽", Some("女")).len(),
            1
        );
    }

    #[test]
    fn compound_surnames_need_a_given_name() {
        assert_eq!(surname_of("欧阳娜娜"), Some("欧阳"));
        assert_eq!(surname_of("欧阳"), Some("欧"));
        assert_eq!(surname_of(" 张丽"), Some("张"));
        assert_eq!(surname_of(""), None);
        assert!(begins_with_surname("王芳") && begins_with_surname("司马光"));
        assert!(!begins_with_surname("生日快乐") && !begins_with_surname("推荐的"));
    }
}
