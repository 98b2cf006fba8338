//! Projects: the list (and creating one, for site admins), a project's page (its README, the
//! `README.md` of its newest pushed snapshot rendered as safe Markdown; its experiments, and
//! creating one, for contributors), its members and their roles (managed by owners). Edit
//! controls appear only for those allowed; the services refuse everyone else anyway.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect};
use cairn_domain::ErrorKind;
use cairn_domain::comments::CommentTarget;
use cairn_domain::entities::ViewType;
use cairn_domain::identity::ProjectRole;
use cairn_service::{Authorizer, Services};
use serde::Deserialize;

use crate::artifacts::read_prefix;
use crate::comments::{CommentsView, load as load_comments};
use crate::error::{PageError, PageResult};
use crate::extract::{PageForm, PagePath, PageQuery};
use crate::layout::{Layout, encode, render, time};
use crate::session::Visitor;
use crate::work::{WorkspacesView, load_workspaces};

/// Experiments per page of a project.
const EXPERIMENTS_PER_PAGE: i64 = 100;
/// The most of a README that is rendered.
const MAX_README_BYTES: usize = 256 * 1024;
/// File names taken as a project's README (at the snapshot's root, first match wins).
const README_NAMES: &[&str] = &["README.md", "readme.md", "Readme.md", "README.markdown"];

/// A project's README, rendered.
struct Readme {
    html: String,
    file: String,
    snapshot: String,
    truncated: bool,
}

struct ProjectRow {
    name: String,
    description: String,
    created: String,
}

#[derive(Template)]
#[template(path = "projects.html")]
struct ProjectsPage {
    layout: Layout,
    projects: Vec<ProjectRow>,
    can_create: bool,
}

struct ExperimentRow {
    id: i64,
    name: String,
    created: String,
}

struct DatasetRow {
    name: String,
    latest: String,
    description: String,
}

#[derive(Template)]
#[template(path = "project.html")]
struct ProjectPage {
    layout: Layout,
    project: String,
    description: String,
    readme: Option<Readme>,
    tab: &'static str,
    experiments: Vec<ExperimentRow>,
    next_page: Option<String>,
    can_write: bool,
    can_manage: bool,
    workspaces: WorkspacesView,
    datasets: Vec<DatasetRow>,
    comments: CommentsView,
}

struct MemberRow {
    username: String,
    role: String,
}

#[derive(Template)]
#[template(path = "members.html")]
struct MembersPage {
    layout: Layout,
    project: String,
    members: Vec<MemberRow>,
    roles: Vec<&'static str>,
    can_manage: bool,
}

/// `GET /projects`.
pub async fn list(State(services): State<Services>, visitor: Visitor) -> PageResult {
    let projects = services.projects.list(&visitor.context).await?;
    render(&ProjectsPage {
        layout: Layout::new(&visitor, "projects", "Projects"),
        projects: projects
            .into_iter()
            .map(|project| ProjectRow {
                name: project.name,
                description: project.description.unwrap_or_default(),
                created: time(project.created_at),
            })
            .collect(),
        can_create: Authorizer::is_unrestricted(&visitor.context),
    })
}

/// The new-project form.
#[derive(Deserialize)]
pub struct NewProject {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    owner: String,
}

/// `POST /projects`.
pub async fn create(
    State(services): State<Services>,
    visitor: Visitor,
    PageForm(form): PageForm<NewProject>,
) -> PageResult {
    let name = form.name.trim();
    let description = Some(form.description.trim()).filter(|text| !text.is_empty());
    let owner = Some(form.owner.trim()).filter(|text| !text.is_empty());
    let project = services.projects.create(&visitor.context, name, description, owner).await?;
    Ok(Redirect::to(&format!("/projects/{}", encode(&project.name))).into_response())
}

/// `?page=` of a project's experiments.
#[derive(Deserialize)]
pub struct ProjectQuery {
    page: Option<String>,
}

/// `GET /projects/{project}`.
pub async fn show(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath(project): PagePath<String>,
    PageQuery(query): PageQuery<ProjectQuery>,
) -> PageResult {
    let access = services.projects.access(&visitor.context, &project).await?;
    let context = visitor.in_project(&project);
    let order = ["name ASC".to_string()];
    let (experiments, next_page) = services
        .tracking
        .search_experiments(
            &context,
            "",
            &order,
            ViewType::ActiveOnly,
            EXPERIMENTS_PER_PAGE,
            query.page.as_deref().unwrap_or_default(),
        )
        .await?;
    let workspaces = load_workspaces(&services, &visitor, &project, access.can_write).await?;
    let datasets = services
        .datasets
        .list(&visitor.context, &project)
        .await?
        .into_iter()
        .map(|dataset| DatasetRow {
            latest: dataset.latest_version.map(|v| format!("v{v}")).unwrap_or_default(),
            name: dataset.name,
            description: dataset.description,
        })
        .collect();
    let readme = readme(&services, &visitor, &project).await?;
    let comments = load_comments(
        &services,
        &visitor,
        &project,
        &CommentTarget::Project,
        access.can_write,
        access.can_manage,
    )
    .await?;
    render(&ProjectPage {
        layout: Layout::new(&visitor, "projects", access.project.name.clone()),
        workspaces,
        datasets,
        comments,
        readme,
        tab: "overview",
        description: access.project.description.clone().unwrap_or_default(),
        project: access.project.name,
        experiments: experiments
            .into_iter()
            .map(|experiment| ExperimentRow {
                id: experiment.experiment_id.0,
                name: experiment.name,
                created: time(experiment.creation_time),
            })
            .collect(),
        next_page,
        can_write: access.can_write,
        can_manage: access.can_manage,
    })
}

/// The README of the project's newest snapshot, rendered; `None` without a snapshot or a
/// README in it.
async fn readme(
    services: &Services,
    visitor: &Visitor,
    project: &str,
) -> PageResult<Option<Readme>> {
    let (snapshot, manifest) = match services.files.snapshot(&visitor.context, project, None).await
    {
        Ok(found) => found,
        // No snapshot pushed yet.
        Err(error) if matches!(error.kind, ErrorKind::NotFound | ErrorKind::FailedPrecondition) => {
            return Ok(None);
        }
        Err(error) => return Err(error.into()),
    };
    let Some(file) =
        README_NAMES.iter().find_map(|name| manifest.files.iter().find(|file| file.path == *name))
    else {
        return Ok(None);
    };
    let blob = services.files.blob(&visitor.context, project, &file.sha256).await?;
    let (bytes, truncated) = read_prefix(blob.stream, MAX_README_BYTES).await?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(Some(Readme {
        html: crate::markdown::render(&text),
        file: file.path.clone(),
        snapshot: snapshot.digest.get(..12).unwrap_or(&snapshot.digest).to_string(),
        truncated,
    }))
}

/// The new-experiment form.
#[derive(Deserialize)]
pub struct NewExperiment {
    name: String,
}

/// `POST /projects/{project}/experiments`.
pub async fn create_experiment(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath(project): PagePath<String>,
    PageForm(form): PageForm<NewExperiment>,
) -> PageResult {
    let context = visitor.in_project(&project);
    let id = services.tracking.create_experiment(&context, form.name.trim(), None, &[]).await?;
    let target = format!("/projects/{}/experiments/{}", encode(&project), id.0);
    Ok(Redirect::to(&target).into_response())
}

/// `GET /projects/{project}/members`.
pub async fn members(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath(project): PagePath<String>,
) -> PageResult {
    let access = services.projects.access(&visitor.context, &project).await?;
    let members = services.projects.members(&visitor.context, &project).await?;
    render(&MembersPage {
        layout: Layout::new(&visitor, "projects", format!("Members of {project}")),
        project: access.project.name,
        members: members
            .into_iter()
            .map(|member| MemberRow {
                username: member.username,
                role: member.role.as_str().to_string(),
            })
            .collect(),
        roles: vec!["viewer", "contributor", "owner"],
        can_manage: access.can_manage,
    })
}

/// The set-member form.
#[derive(Deserialize)]
pub struct MemberForm {
    username: String,
    role: String,
}

/// `POST /projects/{project}/members`.
pub async fn set_member(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath(project): PagePath<String>,
    PageForm(form): PageForm<MemberForm>,
) -> PageResult {
    let role =
        ProjectRole::parse(&form.role).map_err(|error| PageError::bad_request(error.message))?;
    services.projects.set_member(&visitor.context, &project, form.username.trim(), role).await?;
    Ok(Redirect::to(&format!("/projects/{}/members", encode(&project))).into_response())
}

/// The remove-member form.
#[derive(Deserialize)]
pub struct RemoveForm {
    username: String,
}

/// `POST /projects/{project}/members/remove`.
pub async fn remove_member(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath(project): PagePath<String>,
    PageForm(form): PageForm<RemoveForm>,
) -> PageResult {
    services.projects.remove_member(&visitor.context, &project, form.username.trim()).await?;
    Ok(Redirect::to(&format!("/projects/{}/members", encode(&project))).into_response())
}
