//! Projects and their members, and the lookups authorisation needs: which project an
//! experiment, run or logged model belongs to, and what role a user holds in it.

use cairn_domain::DomainError;
use cairn_domain::audit::RequestContext;
use cairn_domain::identity::{Project, ProjectRole};
use cairn_domain::time::now_millis;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::entry;
use crate::{Store, StoreError, StoreResult};

fn project_from_row(row: &AnyRow) -> StoreResult<Project> {
    Ok(Project {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        created_at: row.try_get("created_at")?,
    })
}

/// A project member as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The user's name.
    pub username: String,
    /// Their role.
    pub role: ProjectRole,
}

/// A team as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    /// The unique name.
    pub name: String,
    /// Creation time (epoch ms).
    pub created_at: i64,
    /// Its members' user names.
    pub members: Vec<String>,
    /// The projects it has a role in, with the role.
    pub projects: Vec<(String, ProjectRole)>,
}

impl Store {
    /// Creates a project.
    pub async fn create_project(
        &self,
        context: &RequestContext,
        name: &str,
        description: Option<&str>,
    ) -> StoreResult<Project> {
        let mut transaction = self.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO projects (name, description, created_at) VALUES ($1, $2, $3) \
             RETURNING id, name, description, created_at",
        )
        .bind(name)
        .bind(description)
        .bind(now_millis())
        .fetch_one(&mut *transaction)
        .await
        .map_err(StoreError::from);
        let row = match inserted {
            Err(error) if error.is_unique_violation() => {
                return Err(DomainError::already_exists(format!(
                    "a project named '{name}' already exists"
                ))
                .into());
            }
            other => other?,
        };
        let project = project_from_row(&row)?;
        self.commit_audited(
            transaction,
            context,
            entry(
                "project.create",
                format!("project:{name}"),
                serde_json::json!({"description": description}),
            ),
        )
        .await?;
        Ok(project)
    }

    /// Loads a project by name.
    pub async fn get_project(&self, name: &str) -> StoreResult<Project> {
        let row =
            sqlx::query("SELECT id, name, description, created_at FROM projects WHERE name = $1")
                .bind(name)
                .fetch_optional(self.reader())
                .await?
                .ok_or_else(|| {
                    StoreError::from(DomainError::not_found(format!("no project named '{name}'")))
                })?;
        project_from_row(&row)
    }

    /// Lists projects by name.
    pub async fn list_projects(&self) -> StoreResult<Vec<Project>> {
        let rows =
            sqlx::query("SELECT id, name, description, created_at FROM projects ORDER BY name")
                .fetch_all(self.reader())
                .await?;
        rows.iter().map(project_from_row).collect()
    }

    /// Adds a member or changes their role.
    pub async fn set_member(
        &self,
        context: &RequestContext,
        project: &Project,
        user_id: i64,
        username: &str,
        role: ProjectRole,
    ) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        sqlx::query(
            "INSERT INTO project_members (project_id, user_id, role) VALUES ($1, $2, $3) \
             ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role",
        )
        .bind(project.id)
        .bind(user_id)
        .bind(role.as_str())
        .execute(&mut *transaction)
        .await?;
        let details = serde_json::json!({"user": username, "role": role.as_str()});
        self.commit_audited(
            transaction,
            context,
            entry("project.member.set", format!("project:{}", project.name), details),
        )
        .await?;
        Ok(())
    }

    /// Removes a member.
    pub async fn remove_member(
        &self,
        context: &RequestContext,
        project: &Project,
        user_id: i64,
        username: &str,
    ) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        let removed =
            sqlx::query("DELETE FROM project_members WHERE project_id = $1 AND user_id = $2")
                .bind(project.id)
                .bind(user_id)
                .execute(&mut *transaction)
                .await?;
        if removed.rows_affected() == 0 {
            return Err(DomainError::not_found(format!(
                "'{username}' is not a member of project '{}'",
                project.name
            ))
            .into());
        }
        let details = serde_json::json!({"user": username});
        self.commit_audited(
            transaction,
            context,
            entry("project.member.remove", format!("project:{}", project.name), details),
        )
        .await?;
        Ok(())
    }

    /// Lists a project's members by name.
    pub async fn list_members(&self, project_id: i64) -> StoreResult<Vec<Member>> {
        let rows = sqlx::query(
            "SELECT u.username, m.role FROM project_members m JOIN users u ON u.id = m.user_id \
             WHERE m.project_id = $1 ORDER BY u.username",
        )
        .bind(project_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Member {
                    username: row.try_get("username")?,
                    role: ProjectRole::parse(&row.try_get::<String, _>("role")?)?,
                })
            })
            .collect()
    }

    /// The strongest role a user holds in a project, directly or through a team.
    pub async fn member_role(
        &self,
        project_id: i64,
        user_id: i64,
    ) -> StoreResult<Option<ProjectRole>> {
        let roles: Vec<String> = sqlx::query_scalar(
            "SELECT role FROM project_members WHERE project_id = $1 AND user_id = $2 \
             UNION ALL SELECT p.role FROM project_teams p JOIN team_members t ON t.team_id = p.team_id \
             WHERE p.project_id = $1 AND t.user_id = $2",
        )
        .bind(project_id)
        .bind(user_id)
        .fetch_all(self.reader())
        .await?;
        let mut strongest = None;
        for role in roles {
            strongest = strongest.max(Some(ProjectRole::parse(&role)?));
        }
        Ok(strongest)
    }

    /// Creates a team.
    pub async fn create_team(&self, context: &RequestContext, name: &str) -> StoreResult<i64> {
        let mut transaction = self.begin().await?;
        let inserted =
            sqlx::query_scalar("INSERT INTO teams (name, created_at) VALUES ($1, $2) RETURNING id")
                .bind(name)
                .bind(now_millis())
                .fetch_one(&mut *transaction)
                .await
                .map_err(StoreError::from);
        let id: i64 = match inserted {
            Err(error) if error.is_unique_violation() => {
                return Err(DomainError::already_exists(format!(
                    "a team named '{name}' already exists"
                ))
                .into());
            }
            other => other?,
        };
        self.commit_audited(
            transaction,
            context,
            entry("team.create", format!("team:{name}"), serde_json::json!({})),
        )
        .await?;
        Ok(id)
    }

    async fn team_id(&self, name: &str) -> StoreResult<i64> {
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM teams WHERE name = $1")
            .bind(name)
            .fetch_optional(self.reader())
            .await?;
        id.ok_or_else(|| DomainError::not_found(format!("no team named '{name}'")).into())
    }

    /// Adds a user to a team, or removes them.
    pub async fn set_team_membership(
        &self,
        context: &RequestContext,
        team: &str,
        user_id: i64,
        username: &str,
        member: bool,
    ) -> StoreResult<()> {
        let team_id = self.team_id(team).await?;
        let mut transaction = self.begin().await?;
        if member {
            sqlx::query("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(team_id)
                .bind(user_id)
                .execute(&mut *transaction)
                .await?;
        } else {
            sqlx::query("DELETE FROM team_members WHERE team_id = $1 AND user_id = $2")
                .bind(team_id)
                .bind(user_id)
                .execute(&mut *transaction)
                .await?;
        }
        let action = if member { "team.member.add" } else { "team.member.remove" };
        self.commit_audited(
            transaction,
            context,
            entry(action, format!("team:{team}"), serde_json::json!({"user": username})),
        )
        .await?;
        Ok(())
    }

    /// Gives a team a role in a project (or removes it with `None`).
    pub async fn set_project_team(
        &self,
        context: &RequestContext,
        project: &Project,
        team: &str,
        role: Option<ProjectRole>,
    ) -> StoreResult<()> {
        let team_id = self.team_id(team).await?;
        let mut transaction = self.begin().await?;
        match role {
            Some(role) => {
                sqlx::query(
                    "INSERT INTO project_teams (project_id, team_id, role) VALUES ($1, $2, $3) \
                     ON CONFLICT (project_id, team_id) DO UPDATE SET role = excluded.role",
                )
                .bind(project.id)
                .bind(team_id)
                .bind(role.as_str())
                .execute(&mut *transaction)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM project_teams WHERE project_id = $1 AND team_id = $2")
                    .bind(project.id)
                    .bind(team_id)
                    .execute(&mut *transaction)
                    .await?;
            }
        }
        let details = serde_json::json!({"team": team, "role": role.map(ProjectRole::as_str)});
        self.commit_audited(
            transaction,
            context,
            entry("project.team.set", format!("project:{}", project.name), details),
        )
        .await?;
        Ok(())
    }

    /// Every team with its members and the projects it has a role in, by name (three queries).
    pub async fn list_teams(&self) -> StoreResult<Vec<Team>> {
        let rows = sqlx::query("SELECT id, name, created_at FROM teams ORDER BY name")
            .fetch_all(self.reader())
            .await?;
        let mut teams = Vec::with_capacity(rows.len());
        let mut ids = Vec::with_capacity(rows.len());
        for row in &rows {
            ids.push(row.try_get::<i64, _>("id")?);
            teams.push(Team {
                name: row.try_get("name")?,
                created_at: row.try_get("created_at")?,
                members: Vec::new(),
                projects: Vec::new(),
            });
        }
        let members = sqlx::query(
            "SELECT t.team_id, u.username FROM team_members t JOIN users u ON u.id = t.user_id \
             ORDER BY u.username",
        )
        .fetch_all(self.reader())
        .await?;
        for row in members {
            let team_id: i64 = row.try_get("team_id")?;
            if let Some(index) = ids.iter().position(|id| *id == team_id) {
                teams[index].members.push(row.try_get("username")?);
            }
        }
        let roles = sqlx::query(
            "SELECT pt.team_id, p.name, pt.role FROM project_teams pt \
             JOIN projects p ON p.id = pt.project_id ORDER BY p.name",
        )
        .fetch_all(self.reader())
        .await?;
        for row in roles {
            let team_id: i64 = row.try_get("team_id")?;
            if let Some(index) = ids.iter().position(|id| *id == team_id) {
                let role = ProjectRole::parse(&row.try_get::<String, _>("role")?)?;
                teams[index].projects.push((row.try_get("name")?, role));
            }
        }
        Ok(teams)
    }

    /// The projects a user belongs to, directly or through a team, by name (one query).
    pub async fn member_projects(&self, user_id: i64) -> StoreResult<Vec<Project>> {
        let rows = sqlx::query(
            "SELECT p.id, p.name, p.description, p.created_at FROM projects p WHERE p.id IN (\
             SELECT project_id FROM project_members WHERE user_id = $1 UNION \
             SELECT pt.project_id FROM project_teams pt JOIN team_members t ON t.team_id = pt.team_id \
             WHERE t.user_id = $1) ORDER BY p.name",
        )
        .bind(user_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(project_from_row).collect()
    }

    /// The projects a user owns directly.
    pub async fn owned_projects(&self, user_id: i64) -> StoreResult<Vec<Project>> {
        let rows = sqlx::query(
            "SELECT p.id, p.name, p.description, p.created_at FROM projects p JOIN project_members m \
             ON m.project_id = p.id WHERE m.user_id = $1 AND m.role = 'owner' ORDER BY p.name",
        )
        .bind(user_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(project_from_row).collect()
    }

    /// How many active users own a project directly.
    pub async fn active_owner_count(&self, project_id: i64) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM project_members m JOIN users u ON u.id = m.user_id \
             WHERE m.project_id = $1 AND m.role = 'owner' AND u.active = 1",
        )
        .bind(project_id)
        .fetch_one(self.reader())
        .await?)
    }

    /// The project of an experiment, if the experiment exists.
    pub async fn experiment_project(&self, experiment_id: i64) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar("SELECT project_id FROM experiments WHERE experiment_id = $1")
            .bind(experiment_id)
            .fetch_optional(self.reader())
            .await?)
    }

    /// The project of a run, if the run exists.
    pub async fn run_project(&self, run_id: &str) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT e.project_id FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id WHERE r.run_uuid = $1",
        )
        .bind(run_id)
        .fetch_optional(self.reader())
        .await?)
    }

    /// The project of a logged model, if it exists.
    pub async fn logged_model_project(&self, model_id: &str) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT e.project_id FROM logged_models m JOIN experiments e ON e.experiment_id = m.experiment_id \
             WHERE m.model_id = $1",
        )
        .bind(model_id)
        .fetch_optional(self.reader())
        .await?)
    }
}
