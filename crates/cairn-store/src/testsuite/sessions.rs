//! Conformance: browser sessions (found by digest while live and their user active, moved,
//! deleted with an audit record), the projects a user belongs to, and recent runs.

use cairn_domain::identity::{ProjectRole, SiteRole};

use super::ctx;
use crate::{NewRun, NewSession, NewUser, Store};

pub(super) async fn run(store: &Store) {
    let user = store
        .create_user(
            &ctx(),
            &NewUser {
                username: "session-user".into(),
                display_name: None,
                email: None,
                password_hash: None,
                site_role: SiteRole::Member,
                service_account: false,
            },
        )
        .await
        .expect("user");
    let session = NewSession {
        digest: "d".repeat(64),
        user_id: user.id,
        username: user.username.clone(),
        csrf_token: "csrf-token".into(),
        created_at: 1_000,
        expires_at: 5_000,
        method: "password",
    };
    store.create_session(&ctx(), &session).await.expect("create session");
    let found = store.find_session(&session.digest, 2_000).await.expect("find").expect("live");
    assert_eq!(
        (found.user.username.as_str(), found.csrf_token.as_str()),
        ("session-user", "csrf-token")
    );
    assert_eq!((found.created_at, found.expires_at, found.last_seen_at), (1_000, 5_000, 1_000));
    assert!(store.find_session(&session.digest, 5_000).await.expect("find").is_none(), "expired");
    assert!(store.find_session(&"e".repeat(64), 2_000).await.expect("find").is_none());
    store.touch_session(&session.digest, 4_000, 9_000).await.expect("touch");
    let moved = store.find_session(&session.digest, 6_000).await.expect("find").expect("moved");
    assert_eq!((moved.last_seen_at, moved.expires_at), (4_000, 9_000));
    assert!(store.delete_session(&ctx(), &session.digest, "session-user").await.expect("delete"));
    assert!(!store.delete_session(&ctx(), &session.digest, "session-user").await.expect("again"));
    assert!(store.find_session(&session.digest, 6_000).await.expect("find").is_none());
    // Deactivation ends the user's sessions for good: reactivating does not revive them.
    let second = NewSession { digest: "f".repeat(64), ..session };
    store.create_session(&ctx(), &second).await.expect("create a second session");
    store.set_user_active(&ctx(), "session-user", false).await.expect("deactivate");
    assert!(store.find_session(&second.digest, 2_000).await.expect("find").is_none());
    store.set_user_active(&ctx(), "session-user", true).await.expect("reactivate");
    assert!(store.find_session(&second.digest, 2_000).await.expect("find").is_none(), "gone");
    let query =
        crate::AuditQuery { action: Some("session.".into()), limit: 10, ..Default::default() };
    let (records, _) = store.search_audit(&query).await.expect("audit");
    let actions: Vec<&str> = records.iter().map(|record| record.action.as_str()).collect();
    assert_eq!(actions, ["session.login", "session.logout", "session.login"]);

    let project = store.create_project(&ctx(), "sessions-project", None).await.expect("project");
    assert!(store.member_projects(user.id).await.expect("none yet").is_empty());
    store
        .set_member(&ctx(), &project, user.id, &user.username, ProjectRole::Viewer)
        .await
        .expect("member");
    let names: Vec<String> =
        store.member_projects(user.id).await.expect("mine").into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["sessions-project"]);
    let experiment =
        store.create_experiment(&ctx(), project.id, "recent", None, &[]).await.expect("exp");
    for start_time in [10, 30, 20] {
        let new_run =
            NewRun { experiment_id: experiment, start_time: Some(start_time), ..NewRun::default() };
        store.create_run(&ctx(), &new_run).await.expect("run");
    }
    let recent = store.recent_runs(&[project.id], 2).await.expect("recent");
    let starts: Vec<i64> = recent.iter().map(|run| run.info.start_time).collect();
    assert_eq!(starts, [30, 20], "newest first, limited");
    assert!(
        recent.iter().all(|run| run.project == "sessions-project" && run.experiment == "recent")
    );
    assert!(store.recent_runs(&[], 5).await.expect("none").is_empty());
}
