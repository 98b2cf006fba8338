//! `cairn admin bootstrap|user|token …`: identity administration straight against the metadata
//! database, acting as `system`. Secrets are printed to standard output once and never logged.

use std::io::BufRead;

use anyhow::Context;
use cairn_domain::audit::RequestContext;
use cairn_domain::identity::ProjectRole;
use cairn_domain::identity::SiteRole;
use cairn_service::{IdentityService, ProjectService, UserSpec};

use crate::cli::{BootstrapArgs, ProjectCommand, TeamCommand, TokenCommand, UserCommand};

/// Runs `cairn admin bootstrap`.
pub async fn bootstrap(args: &BootstrapArgs) -> anyhow::Result<()> {
    let store = crate::connect_store(&args.backend.config()).await?;
    let identity = IdentityService::new(store.clone());
    let outcome = identity.bootstrap(&RequestContext::system(), &args.username).await?;
    store.close().await;
    match outcome {
        Some((user, token)) => {
            println!("created admin '{}'; its token (shown once):\n{token}", user.username);
            Ok(())
        }
        None => {
            anyhow::bail!("the site already has users; create more with `cairn admin user create`")
        }
    }
}

/// Runs `cairn admin user …`.
pub async fn user(command: &UserCommand) -> anyhow::Result<()> {
    let backend = match command {
        UserCommand::Create(args) => &args.backend,
        UserCommand::List(backend) => backend,
        UserCommand::Deactivate(args) => &args.backend,
        UserCommand::Activate(args) => &args.backend,
        UserCommand::SetDefaultProject(args) => &args.backend,
        UserCommand::SetRole(args) => &args.backend,
    };
    let store = crate::connect_store(&backend.config()).await?;
    let identity = IdentityService::new(store.clone());
    let context = RequestContext::system();
    let outcome = match command {
        UserCommand::Create(args) => {
            let password = if args.password_stdin {
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line).context("reading the password")?;
                Some(line.trim_end_matches(['\r', '\n']).to_string())
            } else {
                None
            };
            let spec = UserSpec {
                username: args.username.clone(),
                site_role: SiteRole::parse(&args.role)?,
                service_account: args.service_account,
                password,
                display_name: args.display_name.clone(),
                email: args.email.clone(),
            };
            identity.create_user(&context, &spec).await.map(|user| {
                println!(
                    "created {} '{}' ({})",
                    kind(user.service_account),
                    user.username,
                    user.site_role.as_str()
                );
            })
        }
        UserCommand::List(_) => identity.list_users(&context).await.map(|users| {
            println!("{:<32} {:<20} {:<16} STATUS", "USER", "ROLE", "KIND");
            for user in users {
                let status = if user.active { "active" } else { "deactivated" };
                println!(
                    "{:<32} {:<20} {:<16} {status}",
                    user.username,
                    user.site_role.as_str(),
                    kind(user.service_account)
                );
            }
        }),
        UserCommand::Deactivate(args) => identity
            .deactivate_user(&context, &args.username, args.transfer_to.as_deref())
            .await
            .map(|user| println!("deactivated '{}'", user.username)),
        UserCommand::SetDefaultProject(args) => {
            let project = if args.clear { None } else { args.project.as_deref() };
            identity.set_default_project(&context, &args.username, project).await.map(|()| {
                println!(
                    "'{}' now works in '{}' by default",
                    args.username,
                    project.unwrap_or("default")
                )
            })
        }
        UserCommand::Activate(args) => identity
            .set_user_active(&context, &args.username, true)
            .await
            .map(|user| println!("activated '{}'", user.username)),
        UserCommand::SetRole(args) => match SiteRole::parse(&args.role) {
            Ok(role) => identity.set_site_role(&context, &args.username, role).await.map(|user| {
                println!("'{}' is now a site {}", user.username, user.site_role.as_str())
            }),
            Err(error) => Err(error.into()),
        },
    };
    store.close().await;
    Ok(outcome?)
}

fn kind(service_account: bool) -> &'static str {
    if service_account { "service-account" } else { "person" }
}

/// Runs `cairn admin token …`.
pub async fn token(command: &TokenCommand) -> anyhow::Result<()> {
    let backend = match command {
        TokenCommand::Create(args) => &args.backend,
        TokenCommand::List(args) => &args.backend,
        TokenCommand::Revoke(args) => &args.backend,
    };
    let store = crate::connect_store(&backend.config()).await?;
    let identity = IdentityService::new(store.clone());
    let context = RequestContext::system();
    let outcome = match command {
        TokenCommand::Create(args) => identity
            .create_token(&context, &args.user, &args.name, args.expires_in_days)
            .await
            .map(|(info, secret)| {
                println!("token {} for '{}' (shown once):\n{secret}", info.id, args.user)
            }),
        TokenCommand::List(args) => {
            identity.list_tokens(&context, &args.username).await.map(|tokens| {
                println!("{:<6} {:<24} {:<14} STATUS", "ID", "NAME", "HINT");
                for token in tokens {
                    let status = match (token.revoked_at, token.expires_at) {
                        (Some(_), _) => "revoked".to_string(),
                        (None, Some(expires)) if expires <= cairn_domain::time::now_millis() => {
                            "expired".to_string()
                        }
                        (None, Some(expires)) => {
                            format!("expires {}", cairn_domain::time::format_utc(expires))
                        }
                        (None, None) => "active".to_string(),
                    };
                    println!("{:<6} {:<24} {:<14} {status}", token.id, token.name, token.hint);
                }
            })
        }
        TokenCommand::Revoke(args) => identity
            .revoke_token(&context, args.id, None)
            .await
            .map(|()| println!("revoked token {}", args.id)),
    };
    store.close().await;
    Ok(outcome?)
}

/// Runs `cairn admin project …`.
pub async fn project(command: &ProjectCommand) -> anyhow::Result<()> {
    let backend = match command {
        ProjectCommand::Create(args) => &args.backend,
        ProjectCommand::List(backend) => backend,
        ProjectCommand::SetMember(args) => &args.backend,
        ProjectCommand::RemoveMember(args) => &args.backend,
        ProjectCommand::Members(args) => &args.backend,
        ProjectCommand::SetTeam(args) => &args.backend,
    };
    let store = crate::connect_store(&backend.config()).await?;
    let projects = ProjectService::new(store.clone());
    let context = RequestContext::system();
    let outcome = match command {
        ProjectCommand::Create(args) => projects
            .create(&context, &args.name, args.description.as_deref(), args.owner.as_deref())
            .await
            .map(|project| {
                println!(
                    "created project '{}'; tracking URI suffix: /p/{}",
                    project.name, project.name
                )
            }),
        ProjectCommand::List(_) => projects.list(&context).await.map(|list| {
            for project in list {
                println!("{:<32} {}", project.name, project.description.unwrap_or_default());
            }
        }),
        ProjectCommand::SetMember(args) => match ProjectRole::parse(&args.role) {
            Ok(role) => {
                projects.set_member(&context, &args.project, &args.user, role).await.map(|()| {
                    println!("'{}' is now a {} of '{}'", args.user, role.as_str(), args.project)
                })
            }
            Err(error) => Err(error.into()),
        },
        ProjectCommand::RemoveMember(args) => projects
            .remove_member(&context, &args.project, &args.user)
            .await
            .map(|()| println!("removed '{}' from '{}'", args.user, args.project)),
        ProjectCommand::SetTeam(args) => {
            let role = match args.role.as_str() {
                "none" => Ok(None),
                other => ProjectRole::parse(other).map(Some),
            };
            match role {
                Ok(role) => {
                    projects.set_project_team(&context, &args.project, &args.team, role).await.map(
                        |()| println!("team '{}' in '{}': {}", args.team, args.project, args.role),
                    )
                }
                Err(error) => Err(error.into()),
            }
        }
        ProjectCommand::Members(args) => {
            projects.members(&context, &args.project).await.map(|members| {
                for member in members {
                    println!("{:<32} {}", member.username, member.role.as_str());
                }
            })
        }
    };
    store.close().await;
    Ok(outcome?)
}

/// Runs `cairn admin team …`.
pub async fn team(command: &TeamCommand) -> anyhow::Result<()> {
    let backend = match command {
        TeamCommand::Create(args) => &args.backend,
        TeamCommand::AddUser(args) | TeamCommand::RemoveUser(args) => &args.backend,
        TeamCommand::List(backend) => backend,
    };
    let store = crate::connect_store(&backend.config()).await?;
    let projects = ProjectService::new(store.clone());
    let context = RequestContext::system();
    let outcome = match command {
        TeamCommand::Create(args) => projects
            .create_team(&context, &args.team)
            .await
            .map(|()| println!("created team '{}'", args.team)),
        TeamCommand::AddUser(args) => projects
            .set_team_user(&context, &args.team, &args.user, true)
            .await
            .map(|()| println!("added '{}' to team '{}'", args.user, args.team)),
        TeamCommand::RemoveUser(args) => projects
            .set_team_user(&context, &args.team, &args.user, false)
            .await
            .map(|()| println!("removed '{}' from team '{}'", args.user, args.team)),
        TeamCommand::List(_) => projects.teams(&context).await.map(|teams| {
            println!("{:<24} {:<40} PROJECTS", "TEAM", "MEMBERS");
            for team in teams {
                let roles: Vec<String> = team
                    .projects
                    .iter()
                    .map(|(project, role)| format!("{project} ({})", role.as_str()))
                    .collect();
                println!("{:<24} {:<40} {}", team.name, team.members.join(","), roles.join(", "));
            }
        }),
    };
    store.close().await;
    Ok(outcome?)
}
