//! The `revisit` command line. Doc comments are the help text.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Arg, ArgAction, CommandFactory, FromArgMatches, Parser, Subcommand, error::ErrorKind};

use crate::store::JobState;

/// Revisit 医美客户回访系统：导入连锁机构的数据，找出即将过生日的客户，用大模型写个性化祝福并发送；
/// 每一步都是存放在数据库中的持久任务，由 worker 守护进程执行。
#[derive(Debug, Parser)]
#[command(
    name = "revisit",
    version,
    after_help = "环境变量：\n  DATABASE_URL   数据库：sqlite://data/revisit.db（默认，无需服务器）或\n                 postgres://用户:密码@主机:5432/revisit\n  LLM_API_KEY    大模型的密钥（默认 DeepSeek）；不设置则用模板生成话术\n  CLICKHOUSE_URL 分析库（例如 http://127.0.0.1:8123）；不设置则不用\n  LLM_API_URL、LLM_MODEL、BIRTHDAY_REMINDER_DAYS_AHEAD，以及 REVISIT__<分区>__<键>\n  可设置 config/default.toml 中的任一项\n\n导入目录结构和文件须满足的规则：docs/data-format.md"
)]
pub struct Cli {
    /// 覆盖内置默认配置的 TOML 文件（也可用环境变量 REVISIT_CONFIG）。
    #[arg(long, global = true, env = "REVISIT_CONFIG")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// 创建数据库（如不存在）并执行全部迁移（可重复运行）。
    Init {
        /// 先删除数据库及其全部数据。会要求输入数据库名确认。
        #[arg(long)]
        force: bool,
        /// 不询问，直接确认 --force（用于脚本）。
        #[arg(long, requires = "force")]
        yes: bool,
        /// 不创建 ClickHouse 数据库和表（设置了 CLICKHOUSE_URL 时）。
        #[arg(long)]
        skip_clickhouse: bool,
        /// 不创建 NebulaGraph 图空间、标签和边类型（设置了 NEBULA_ADDR 时）。
        #[arg(long)]
        skip_graph: bool,
    },
    /// 检查每个已配置的存储和外部服务。
    Check,
    /// 把一个 JSON 文件或一个按约定目录结构组织的文件夹加入导入队列
    /// （initial/common/*.json、initial/institutions/<机构编码>/*.json、incremental/pending/<日期>/…）；
    /// 目录结构和文件须满足的规则见 docs/data-format.md。
    Import {
        /// JSON 文件，或按导入目录结构组织的文件夹；相对路径从命令运行的位置算起。
        path: PathBuf,
        /// 等待文件导入完成并打印结果（需要有 worker 在运行）。
        #[arg(long)]
        wait: bool,
    },
    /// 正式发送开关：status 查看、on 开启（先说明将发送什么）、off 关闭（立即生效）。
    #[command(subcommand)]
    Sending(SendingCommand),
    /// 立即加入一次回访扫描，与每天的定时任务相同：生日祝福（09:00）、
    /// 术后回访（10:00）、疗程维养提醒（10:30）或沉睡唤醒（11:00）。
    RunReminders {
        /// birthday（生日）、checkin（术后）、cycle（疗程）或 winback（唤醒）。
        #[arg(long, default_value = "birthday", value_parser = ["birthday", "checkin", "cycle", "winback"])]
        kind: String,
        /// 只扫描这家机构（默认：配置中的全部机构）。
        #[arg(long)]
        institution: Option<String>,
        /// 测试模式：生成并显示话术，不发给客户。
        #[arg(long)]
        test_mode: bool,
        /// 以这一天（YYYY-MM-DD）代替今天作为窗口的起点。
        #[arg(long)]
        today: Option<NaiveDate>,
        /// 等待每条话术生成并发送完毕（需要有 worker 在运行）。
        #[arg(long)]
        wait: bool,
    },
    /// 以守护进程方式运行 worker 池和定时任务，直到收到 SIGTERM 或 Ctrl-C。
    Worker {
        /// 只处理这些队列（可重复；默认：全部）。
        #[arg(long = "queue")]
        queues: Vec<String>,
        /// 本进程不运行定时任务。
        #[arg(long)]
        no_cron: bool,
        /// 同时在本进程提供 REST API 和控制台，监听这个地址（默认：api.addr，
        /// 127.0.0.1:8000）。
        #[arg(long, num_args = 0..=1, default_missing_value = "")]
        serve: Option<String>,
        /// 不带 --serve 时：在这个地址提供 /metrics、/health/live 和 /health/ready
        /// （默认：worker.metrics_addr；为空则不提供）。
        #[arg(long)]
        metrics: Option<String>,
    },
    /// 提供 REST API（/api/v1、/health、/docs）和员工控制台（/），直到收到 SIGTERM 或
    /// Ctrl-C；与 worker 使用同一个数据库。
    Serve {
        /// 监听地址（默认：api.addr，127.0.0.1:8000）。
        #[arg(long)]
        addr: Option<String>,
    },
    /// 按发送前对每条话术的同样标准检查一条消息（广告法、医疗美容广告执法指南、
    /// 不得含电话号码或链接、字数上限）。未通过时退出码为 1。
    Lint {
        /// 要检查的消息。
        text: String,
        /// 按这家机构的消息检查（其 compliance.allow_prices 设置）。
        #[arg(long)]
        institution: Option<String>,
    },
    /// API 令牌：create 创建（密钥只显示一次）、list 列出、revoke 吊销。
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// 退订管理：不再通过某渠道接收消息的号码（如客户回复“回T退订”，或员工登记），
    /// 以及手动录入客户回复。
    #[command(subcommand)]
    Consent(ConsentCommand),
    /// 需人工审批后才发送的消息（consent.approval_institutions 中的机构）：
    /// list 列出、approve 批准、reject 驳回。
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// 员工待办：客户在术后满意度问题中给出的低分。
    #[command(subcommand)]
    Tasks(TasksCommand),
    /// 与该客户相似的客户（同一机构），按消费项目、标签和会员等级做向量检索，并列出共同之处。
    /// 需要先同步向量（运行一次 revisit sync vectors --full，之后由 worker 自动保持最新）。
    Similar {
        /// 客户编码。
        customer_code: String,
        /// 显示多少位。
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=100))]
        limit: u16,
        /// 输出 JSON 而不是表格。
        #[arg(long)]
        json: bool,
    },
    /// 关系图谱：客户的关系、与谁有相同的医生或项目，以及“做过 X 的客户还做过 Y”。
    /// 需要先同步图谱（运行一次 revisit sync graph --full，之后由 worker 自动保持最新）。
    #[command(subcommand)]
    Graph(GraphCommand),
    /// 按文字搜索项目或产品（离线向量化的字面相似度）。
    Search {
        /// projects（项目）或 products（产品）。
        #[arg(value_parser = ["projects", "products"])]
        collection: String,
        /// 要找的内容，例如“补水”。
        text: String,
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=100))]
        limit: u16,
        /// 输出 JSON 而不是表格。
        #[arg(long)]
        json: bool,
    },
    /// 让一个投影（clickhouse、vectors、graph）追上主库：补同步待处理的变更并恢复放弃的同步任务，
    /// 或用 --full 从头重建。
    Sync {
        /// 投影：clickhouse、vectors 或 graph。
        store: String,
        /// 删除该投影的表，从主库重建。
        #[arg(long)]
        full: bool,
        /// 等待投影追上主库并显示进度（需要有 worker 在运行）。
        #[arg(long)]
        wait: bool,
        /// 不再向该投影发送变更（先从每个 worker 的配置中去掉它）。
        #[arg(long, conflicts_with_all = ["full", "wait"])]
        stop: bool,
    },
    /// 任务：列出、重试、取消、暂停和恢复队列。
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// 经营看板：客户数、活跃客户、按月营收、热门项目和产品、回访漏斗；可看全连锁（含各机构）
    /// 或单个机构。设置了 CLICKHOUSE_URL 时取自 ClickHouse，否则取自数据库。
    Dashboard {
        /// 只看这家机构（机构编码）。
        #[arg(long)]
        institution: Option<String>,
        /// 截至这一天（YYYY-MM-DD；默认：配置时区的今天）。
        #[arg(long)]
        date: Option<NaiveDate>,
        /// 输出 JSON（与 API 返回的相同）而不是文字。
        #[arg(long)]
        json: bool,
    },
    /// 立即生成某一天的日报并打印。
    Report {
        /// 日期（默认：配置时区的昨天）。
        #[arg(long)]
        date: Option<NaiveDate>,
    },
    /// 在当前数据库上：初始化、导入示例数据、以测试模式通过真实的队列和 worker 运行生日回访，
    /// 并打印生成的话术。
    Demo {
        /// 示例数据文件夹。
        #[arg(long, default_value = crate::import::SAMPLE_DATA)]
        data: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum SendingCommand {
    /// 正式发送是否开启，以及会发送什么。
    Status,
    /// 说明将发送什么，确认后开启正式发送。
    On {
        /// 不询问，直接确认（用于脚本）。
        #[arg(long)]
        yes: bool,
        /// 操作人（与开关一起记录）。
        #[arg(long, default_value = "命令行")]
        by: String,
    },
    /// 关闭正式发送：之后的扫描以测试模式运行，排队中的正式消息不再发送。
    Off {
        #[arg(long, default_value = "命令行")]
        by: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// 创建令牌并打印密钥（只显示这一次；只保存其摘要）。
    Create {
        /// staff（员工）：一家机构的客户、回访、导入和看板；
        /// admin（管理员）：全连锁、任务和初始化。
        #[arg(long, value_parser = ["staff", "admin"])]
        role: String,
        /// 机构编码：员工令牌必填。
        #[arg(long)]
        institution: Option<String>,
        /// 备注：给谁用。
        #[arg(long)]
        label: Option<String>,
        /// 多少天后过期（默认：直到吊销）。
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_days: Option<u32>,
    },
    /// 列出令牌（从不显示密钥）。
    List,
    /// 按编号吊销令牌；之后使用它的请求立即被拒绝。
    Revoke { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum ConsentCommand {
    /// 不再通过某渠道向这个号码发送任何消息。
    Optout {
        phone: String,
        /// sms、webhook、wecom 或 all（全部渠道）。
        #[arg(long, default_value = "all")]
        channel: String,
        /// 原因（与退订记录一起保存）。
        #[arg(long)]
        reason: Option<String>,
    },
    /// 解除号码的退订（加 --channel 只解除一个渠道）。
    Restore {
        phone: String,
        #[arg(long)]
        channel: Option<String>,
    },
    /// 退订记录，最新的在前。
    List {
        /// 只看这个号码。
        #[arg(long)]
        phone: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// 像短信网关回传那样录入一条客户回复（T、TD、R 或“退订”等会退订该渠道；
    /// 其他内容不做任何改动）。
    Reply {
        phone: String,
        text: String,
        /// 回复来自的渠道（默认：配置的渠道）。
        #[arg(long)]
        channel: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// 等待审批的消息，最早的在前（姓名和手机号已脱敏）。
    List {
        #[arg(long)]
        institution: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// 按回访编号批准消息，或批准 --institution 的全部待审消息；随后加入发送队列
    /// （遵守发送时段）。
    Approve {
        ids: Vec<i64>,
        #[arg(long)]
        institution: Option<String>,
        /// 审批人（与回访一起记录）。
        #[arg(long, default_value = "命令行")]
        by: String,
    },
    /// 驳回消息：这些消息会被跳过，永不发送。
    Reject {
        ids: Vec<i64>,
        #[arg(long)]
        institution: Option<String>,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long, default_value = "命令行")]
        by: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum GraphCommand {
    /// 客户在 --depth 步之内的关系：机构、医生、项目和产品、在连锁其他机构的同一人、
    /// 推荐人及其推荐的客户。
    Relations {
        customer_code: String,
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=3))]
        depth: u32,
        /// 输出 JSON 而不是列表。
        #[arg(long)]
        json: bool,
    },
    /// 同一机构中与该客户有相同医生、项目或产品的客户。
    Shared {
        customer_code: String,
        #[arg(long, default_value = "all", value_parser = ["doctors", "projects", "products", "all"])]
        by: String,
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=100))]
        limit: u16,
        #[arg(long)]
        json: bool,
    },
    /// 某机构做过这个项目或产品的客户，在那里还做过什么。
    AlsoHad {
        institution_code: String,
        /// 项目或产品的编码或名称。
        item_code: String,
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=100))]
        limit: u16,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// 未完成的待办，最新的在前（加 --all 显示全部）。
    List {
        #[arg(long)]
        institution: Option<String>,
        #[arg(long)]
        all: bool,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// 关闭一条待办，并说明做了什么。
    Done {
        id: i64,
        #[arg(long)]
        note: Option<String>,
        #[arg(long, default_value = "命令行")]
        by: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// 任务列表，最新的在前。
    List {
        /// 只看这种状态：pending 等待中、running 运行中、done 已完成、failed 已失败。
        #[arg(long, value_enum)]
        status: Option<JobState>,
        /// 任务类型（如 message.send）或队列名。
        #[arg(long)]
        kind: Option<String>,
        /// 最多显示多少条。
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// 把失败（已放弃）的任务放回队列，并恢复全部重试次数。
    Retry {
        /// 任务编号。
        #[arg(required_unless_present = "all_failed", conflicts_with = "all_failed")]
        id: Option<String>,
        /// 全部失败任务（给了 --kind 则只限该类型）。
        #[arg(long)]
        all_failed: bool,
        #[arg(long, requires = "all_failed")]
        kind: Option<String>,
    },
    /// 取消一个尚未开始的任务。
    Cancel { id: String },
    /// 立即删除已完成的任务记录（与每晚的清理相同）。失败的任务会保留。
    Prune {
        /// 保留最近多少天的（默认：worker.keep_done_days）。
        #[arg(long)]
        older_than_days: Option<u32>,
    },
    /// 任务类型及其队列、重试策略，以及是否已暂停。
    Kinds,
    /// 暂停一个队列（任务类型或队列名）：恢复之前没有 worker 会开始它的任务；
    /// 已在运行的任务会执行完。每个 worker 在下一次取任务时生效。
    Pause {
        queue: String,
        /// 原因（jobs kinds 中显示）。
        #[arg(long)]
        reason: Option<String>,
    },
    /// 恢复已暂停的队列。
    Resume { queue: String },
}

/// Reads the command line with help and errors in Chinese: clap's own words (Usage, Options,
/// "unexpected argument") are replaced, the help text is the doc comments above. Exits on
/// `--help`, `--version` and bad arguments (code 2), as clap does.
pub fn parse() -> Cli {
    let mut cmd = localized(Cli::command());
    match cmd.try_get_matches_from_mut(std::env::args_os()) {
        Ok(matches) => match Cli::from_arg_matches(&matches) {
            Ok(cli) => cli,
            Err(e) => exit_with(&e),
        },
        Err(e) => exit_with(&e),
    }
}

const HELP_TEMPLATE: &str =
    "{about-with-newline}\n用法：{usage}\n\n{before-help}{all-args}{after-help}";

/// `cmd` and its subcommands with Chinese headings and built-in flags.
fn localized(cmd: clap::Command) -> clap::Command {
    let has_subcommands = cmd.get_subcommands().next().is_some();
    let cmd = cmd
        .help_template(HELP_TEMPLATE)
        .next_help_heading("选项")
        .subcommand_help_heading("命令")
        .subcommand_value_name("命令")
        .disable_help_subcommand(true)
        .disable_help_flag(true)
        .arg(
            Arg::new("help")
                .short('h')
                .long("help")
                .action(ArgAction::Help)
                .help("显示帮助")
                .global(true),
        );
    // clap's [default: …], [possible values: …] and [env: …] in Chinese, after the help text.
    let ids: Vec<clap::Id> = cmd.get_arguments().map(|a| a.get_id().clone()).collect();
    let mut cmd = cmd;
    for id in ids {
        cmd = cmd.mut_arg(id, |a| {
            let (name, help) = words_of(a.get_id().as_str());
            let a = if a.is_positional() {
                a.help_heading("参数")
            } else {
                a.help_heading("选项")
            };
            let a = match (a.get_help().is_none(), help) {
                (true, Some(h)) => a.help(h),
                _ => a,
            };
            if !a.get_action().takes_values() {
                return a;
            }
            let a = match name {
                Some(n) => a.value_name(n),
                None => a,
            };
            let mut notes = Vec::new();
            let values: Vec<String> = a
                .get_possible_values()
                .iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| v.get_name().to_owned())
                .collect();
            if !values.is_empty() && !a.is_hide_possible_values_set() {
                notes.push(format!("可选：{}", values.join("、")));
            }
            let defaults: Vec<String> = a
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            if !defaults.is_empty() && !a.is_hide_default_value_set() {
                notes.push(format!("默认：{}", defaults.join("、")));
            }
            let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            let help = if notes.is_empty() {
                help
            } else {
                format!("{help}（{}）", notes.join("；"))
            };
            a.hide_possible_values(true)
                .hide_default_value(true)
                .hide_env(true)
                .help(help)
        });
    }
    let cmd = if cmd.get_name() == "revisit" {
        cmd.disable_version_flag(true).arg(
            Arg::new("version")
                .short('V')
                .long("version")
                .action(ArgAction::Version)
                .help("显示版本"),
        )
    } else {
        cmd
    };
    if has_subcommands {
        cmd.mut_subcommands(localized)
    } else {
        cmd
    }
}

/// The placeholder (`<机构编码>`) and, for an argument without a doc comment, the help of the
/// arguments that many commands share.
fn words_of(id: &str) -> (Option<&'static str>, Option<&'static str>) {
    match id {
        "config" => (Some("文件"), None),
        "institution" | "institution_code" => (Some("机构编码"), Some("机构编码")),
        "limit" => (Some("条数"), Some("最多显示多少条")),
        "json" => (None, Some("输出 JSON")),
        "by" => (Some("操作人"), Some("操作人（一并记录）")),
        "reason" => (Some("原因"), Some("原因（一并记录）")),
        "note" => (Some("说明"), Some("说明做了什么")),
        "channel" => (
            Some("渠道"),
            Some("渠道：sms、webhook、wecom 或 all（全部）"),
        ),
        "phone" => (Some("手机号"), Some("手机号")),
        "text" => (Some("文字"), Some("文字")),
        "ids" => (Some("回访编号"), Some("回访编号（可写多个）")),
        "id" => (Some("编号"), Some("编号")),
        "customer_code" => (Some("客户编码"), Some("客户编码")),
        "item_code" => (Some("项目或产品"), None),
        "depth" => (Some("步数"), Some("关系的步数（1 到 3）")),
        "all" => (None, Some("包括已处理的")),
        "kind" => (Some("类型"), Some("任务类型（如 message.send）或队列名")),
        "queue" | "queues" => (Some("队列"), Some("队列名或任务类型")),
        "status" => (Some("状态"), None),
        "today" | "date" => (Some("日期"), None),
        "path" | "data" => (Some("路径"), None),
        "addr" | "serve" | "metrics" => (Some("地址"), None),
        "role" => (Some("角色"), None),
        "label" => (Some("备注"), None),
        "expires_days" | "older_than_days" => (Some("天数"), None),
        "store" => (Some("投影"), None),
        "collection" => (Some("类别"), None),
        "top" => (Some("数量"), None),
        _ => (None, None),
    }
}

/// What clap writes in English around our Chinese help.
/// Doc comment lines are joined with a space, which Chinese does not put between characters.
fn in_chinese(help: &str) -> String {
    let help = help
        .replace("[OPTIONS]", "[选项]")
        .replace("[COMMAND]", "[命令]")
        .replace("选项:", "选项：")
        .replace("命令:", "命令：")
        .replace("参数:", "参数：");
    let chars: Vec<char> = help.chars().collect();
    let mut out = String::with_capacity(help.len());
    for (i, c) in chars.iter().enumerate() {
        let wide = |at: Option<&char>| at.is_some_and(|c| !c.is_ascii());
        if *c == ' ' && i > 0 && wide(chars.get(i - 1)) && wide(chars.get(i + 1)) {
            continue;
        }
        out.push(*c);
    }
    out
}

fn exit_with(e: &clap::Error) -> ! {
    use clap::error::ContextKind;
    match e.kind() {
        ErrorKind::DisplayVersion => e.exit(),
        ErrorKind::DisplayHelp => {
            print!("{}", in_chinese(&e.render().to_string()));
            std::process::exit(0);
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprint!("{}", in_chinese(&e.render().to_string()));
            std::process::exit(2);
        }
        _ => {}
    }
    let ctx = |k: ContextKind| e.get(k).map(|v| v.to_string()).unwrap_or_default();
    let arg = ctx(ContextKind::InvalidArg);
    let value = ctx(ContextKind::InvalidValue);
    let valid = ctx(ContextKind::ValidValue).replace(", ", "、");
    let suggested = ctx(ContextKind::SuggestedArg) + &ctx(ContextKind::SuggestedSubcommand);
    let text = match e.kind() {
        ErrorKind::InvalidSubcommand => {
            format!("没有命令 {:?}", ctx(ContextKind::InvalidSubcommand))
        }
        ErrorKind::UnknownArgument => format!("不认识的参数 {arg}"),
        ErrorKind::InvalidValue if !valid.is_empty() => {
            format!("{arg} 的取值 {value:?} 不可用；可用：{valid}")
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            format!("{arg} 的取值 {value:?} 不对")
        }
        ErrorKind::MissingRequiredArgument => format!("缺少必填参数 {arg}"),
        ErrorKind::MissingSubcommand => "缺少命令".to_owned(),
        ErrorKind::ArgumentConflict => {
            format!("{arg} 不能与 {} 同时使用", ctx(ContextKind::PriorArg))
        }
        ErrorKind::TooManyValues => format!("{arg} 给了太多值"),
        ErrorKind::NoEquals | ErrorKind::TooFewValues | ErrorKind::WrongNumberOfValues => {
            format!("{arg} 的值个数不对")
        }
        _ => "命令行参数有误".to_owned(),
    };
    let hint = if suggested.is_empty() {
        String::new()
    } else {
        format!("；是不是想用 {suggested}？")
    };
    eprintln!("错误：{text}{hint}\n查看用法：revisit --help（或在命令后加 --help）");
    std::process::exit(2);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command's help, as `--help` prints it.
    fn helps(cmd: &mut clap::Command, path: &str, out: &mut Vec<(String, String)>) {
        let path = format!("{path} {}", cmd.get_name());
        out.push((path.clone(), in_chinese(&cmd.render_help().to_string())));
        for sub in cmd.get_subcommands_mut() {
            helps(sub, &path, out);
        }
    }

    #[test]
    fn every_help_staff_read_is_chinese() {
        let mut cmd = localized(Cli::command());
        cmd.build();
        let mut all = Vec::new();
        helps(&mut cmd, "", &mut all);
        assert!(all.len() > 40, "{}", all.len());
        for (path, help) in all.iter() {
            for english in [
                "Usage",
                "Options",
                "Commands",
                "Arguments",
                "Print help",
                "[default",
                "[possible",
                "[env",
                "[OPTIONS]",
            ] {
                assert!(!help.contains(english), "{path}: {english}\n{help}");
            }
            // Each option and argument has its help in Chinese.
            for line in help
                .lines()
                .filter(|l| l.trim_start().starts_with('-') || l.trim_start().starts_with('<'))
            {
                assert!(
                    line.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                    "{path}: an option without Chinese help: {line}"
                );
            }
        }
    }
}
