//! `revisit tokens create|list|revoke`: who may use the API and the console.

use crate::{
    api::auth,
    app::App,
    cli::TokensCommand,
    store::access::{NewToken, Role},
};

pub async fn tokens(app: &App, cmd: TokensCommand) -> anyhow::Result<()> {
    match cmd {
        TokensCommand::Create {
            role,
            institution,
            label,
            expires_days,
        } => {
            let role = Role::parse(&role).expect("clap checks the role");
            let institution_id = match (&institution, role) {
                (Some(code), _) => Some(
                    app.store
                        .institution(code)
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("没有机构 {code:?}：请先导入机构"))?
                        .id,
                ),
                (None, Role::Staff) => anyhow::bail!("员工令牌需要 --institution 机构代码"),
                (None, Role::Admin) => None,
            };
            let (secret, prefix) = auth::new_secret()?;
            let id = app
                .store
                .create_token(&NewToken {
                    hash: auth::digest(&secret),
                    prefix,
                    role,
                    institution_id,
                    label,
                    expires_in_days: expires_days,
                })
                .await?;
            println!(
                "🔑 已创建令牌 #{id}（{}{}）。请妥善保存，它只显示这一次：",
                match role {
                    Role::Staff => "员工",
                    Role::Admin => "管理员",
                },
                institution
                    .map(|c| format!("，机构 {c}"))
                    .unwrap_or_default()
                    + &expires_days
                        .map(|d| format!("，{d} 天后过期"))
                        .unwrap_or_default()
            );
            println!("{secret}");
        }
        TokensCommand::List => {
            let rows = app.store.list_tokens().await?;
            if rows.is_empty() {
                println!("还没有令牌：revisit tokens create --role admin");
            } else {
                println!("（{}）", app.settings.zone_note());
            }
            for t in rows {
                println!(
                    "#{:<4} {}…  {:<5} {:<10} 创建 {}  最近使用 {}{}{}{}",
                    t.id,
                    t.prefix,
                    t.role.as_str(),
                    t.institution_code.as_deref().unwrap_or("（全部）"),
                    app.settings.local_time(t.created_at),
                    t.last_used_at
                        .map(|d| app.settings.local_time(d))
                        .unwrap_or_else(|| "从未".into()),
                    t.revoked_at
                        .map(|d| format!("  已吊销 {}", app.settings.local_time(d)))
                        .unwrap_or_default(),
                    t.expires_at
                        .map(|d| format!(
                            "  {} {}",
                            if d <= chrono::Utc::now() {
                                "已过期"
                            } else {
                                "过期于"
                            },
                            app.settings.local_time(d)
                        ))
                        .unwrap_or_default(),
                    t.label.map(|l| format!("  {l}")).unwrap_or_default(),
                );
            }
        }
        TokensCommand::Revoke { id } => {
            if app.store.revoke_token(id).await? {
                println!("🚫 令牌 #{id} 已吊销");
            } else {
                anyhow::bail!("没有令牌 #{id}，或它已被吊销");
            }
        }
    }
    Ok(())
}
