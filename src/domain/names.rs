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

#[cfg(test)]
mod tests {
    use super::*;

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
