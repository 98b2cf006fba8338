//! `cairn comment add|list|delete` and `cairn search`, through a running server: comments on a
//! project, a run or a model version (with `@mentions`), and global search over what the
//! caller may read.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{call_in, load_login};
use crate::compute_cli::ProjectArg;

/// What a comment is about: a run, a model version, or (neither) the project.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// A run's id.
    #[arg(long, conflicts_with = "model")]
    pub run: Option<String>,
    /// A registered model (with `--version`).
    #[arg(long, requires = "version")]
    pub model: Option<String>,
    /// The model's version.
    #[arg(long, requires = "model")]
    pub version: Option<i64>,
}

impl TargetArgs {
    /// The wire form of the target (`run:<id>`, `model_version:<name>/<v>`, `project`).
    fn wire(&self) -> String {
        match (&self.run, &self.model, self.version) {
            (Some(run), _, _) => format!("run:{run}"),
            (None, Some(model), Some(version)) => format!("model_version:{model}/{version}"),
            _ => "project".to_string(),
        }
    }

    fn given(&self) -> bool {
        self.run.is_some() || self.model.is_some()
    }
}

/// `cairn comment …`.
#[derive(Debug, Subcommand)]
pub enum CommentCommand {
    /// Comment on a run (`--run`), a model version (`--model --version`) or the project;
    /// `@name` mentions a user.
    Add {
        /// The text (plain text; `-` reads it from standard input).
        body: String,
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        project: ProjectArg,
    },
    /// List comments, oldest first: on a run, a model version, or (neither) the whole
    /// project; `--project-only` lists only those on the project itself.
    List {
        #[command(flatten)]
        target: TargetArgs,
        /// Only the comments on the project itself.
        #[arg(long, conflicts_with_all = ["run", "model"])]
        project_only: bool,
        #[command(flatten)]
        project: ProjectArg,
    },
    /// Delete a comment (its author, or a project owner).
    Delete {
        /// The comment's id.
        id: i64,
        #[command(flatten)]
        project: ProjectArg,
    },
}

/// Flags of `cairn search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// A name prefix (case-sensitive); `key=value` finds runs by tag, a run id finds the run;
    /// comments match anywhere in their text.
    pub term: String,
    /// Hits per kind (1–50).
    #[arg(long, default_value_t = 10)]
    pub limit: i64,
}

fn print_comment(comment: &Value) {
    let text = |key: &str| comment[key].as_str().unwrap_or_default().to_string();
    let when = cairn_domain::time::format_utc(comment["created_at"].as_i64().unwrap_or_default());
    println!("#{} {} on {} at {when}", comment["id"], text("author"), text("target"));
    for line in text("body").lines() {
        println!("    {line}");
    }
}

/// Runs `cairn comment …`.
pub async fn comment(command: &CommentCommand) -> anyhow::Result<()> {
    let login = load_login()?;
    match command {
        CommentCommand::Add { body, target, project } => {
            let text =
                if body == "-" { std::io::read_to_string(std::io::stdin())? } else { body.clone() };
            let path = format!("/projects/{}/comments", project.project);
            let request = json!({"target": target.wire(), "body": text});
            let created = call_in(&login, None, Method::POST, &path, Some(request)).await?;
            let mentions: Vec<&str> = created["mentions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            println!("comment {} on {}", created["id"], target.wire());
            if !mentions.is_empty() {
                println!("mentions: {}", mentions.join(", "));
            }
        }
        CommentCommand::List { target, project_only, project } => {
            let mut path = format!("/projects/{}/comments?limit=500", project.project);
            if target.given() || *project_only {
                let mut query = form_urlencoded::Serializer::new(String::new());
                query.append_pair("target", &target.wire());
                path.push('&');
                path.push_str(&query.finish());
            }
            let comments = call_in(&login, None, Method::GET, &path, None).await?;
            for comment in comments.as_array().into_iter().flatten() {
                print_comment(comment);
            }
        }
        CommentCommand::Delete { id, project } => {
            let path = format!("/projects/{}/comments/{id}", project.project);
            call_in(&login, None, Method::DELETE, &path, None).await?;
            println!("deleted comment {id}");
        }
    }
    Ok(())
}

/// Runs `cairn search`.
pub async fn search(args: &SearchArgs) -> anyhow::Result<()> {
    let login = load_login()?;
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("q", &args.term).append_pair("limit", &args.limit.to_string());
    let answer =
        call_in(&login, None, Method::GET, &format!("/search?{}", query.finish()), None).await?;
    let hits = answer["hits"].as_array().cloned().unwrap_or_default();
    if hits.is_empty() {
        println!("nothing found");
    }
    for hit in hits {
        let text = |key: &str| hit[key].as_str().unwrap_or_default().to_string();
        println!(
            "{:<11} {:<24} {:<34} {}",
            text("kind"),
            text("project"),
            text("title"),
            match text("kind").as_str() {
                "run" | "comment" | "experiment" => format!("{} ({})", text("detail"), text("id")),
                _ => text("detail"),
            }
        );
    }
    Ok(())
}
