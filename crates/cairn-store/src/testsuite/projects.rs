//! Conformance: projects, members and the project lookups authorisation relies on.

use cairn_domain::ErrorKind;
use cairn_domain::identity::{ProjectRole, SiteRole};

use super::ctx;
use crate::{NewRun, NewUser, Store};

pub(super) async fn run(store: &Store) {
    let default = store.get_project("default").await.expect("the default project exists");
    assert_eq!(default.id, 1);
    let churn = store.create_project(&ctx(), "churn", Some("churn models")).await.expect("create");
    assert_ne!(churn.id, default.id);
    let duplicate = store.create_project(&ctx(), "churn", None).await.unwrap_err();
    assert_eq!(duplicate.kind(), ErrorKind::AlreadyExists);

    let in_default = store
        .create_experiment(&ctx(), default.id, "shared-name", None, &[])
        .await
        .expect("default");
    let in_churn = store
        .create_experiment(&ctx(), churn.id, "shared-name", None, &[])
        .await
        .expect("names are per project");
    assert_ne!(in_default, in_churn);
    let again =
        store.create_experiment(&ctx(), churn.id, "shared-name", None, &[]).await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::AlreadyExists);
    assert_eq!(
        store.get_experiment_by_name(churn.id, "shared-name").await.expect("by name").experiment_id,
        in_churn
    );
    assert_eq!(store.experiment_project(in_churn.0).await.expect("lookup"), Some(churn.id));
    assert_eq!(store.experiment_project(987_654).await.expect("lookup"), None);
    let run = store
        .create_run(&ctx(), &NewRun { experiment_id: in_churn, ..NewRun::default() })
        .await
        .expect("run");
    assert_eq!(store.run_project(&run.info.run_id).await.expect("lookup"), Some(churn.id));

    let user = store
        .create_user(
            &ctx(),
            &NewUser {
                username: "member-check".into(),
                display_name: None,
                email: None,
                password_hash: None,
                site_role: SiteRole::Member,
                service_account: false,
            },
        )
        .await
        .expect("user");
    assert_eq!(store.member_role(churn.id, user.id).await.expect("role"), None);
    store
        .set_member(&ctx(), &churn, user.id, &user.username, ProjectRole::Viewer)
        .await
        .expect("add");
    store
        .set_member(&ctx(), &churn, user.id, &user.username, ProjectRole::Contributor)
        .await
        .expect("change");
    assert_eq!(
        store.member_role(churn.id, user.id).await.expect("role"),
        Some(ProjectRole::Contributor)
    );
    let members = store.list_members(churn.id).await.expect("members");
    assert_eq!(members.len(), 1);
    store.remove_member(&ctx(), &churn, user.id, &user.username).await.expect("remove");
    assert_eq!(store.member_role(churn.id, user.id).await.expect("role"), None);
    let names: Vec<String> =
        store.list_projects().await.expect("list").into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["churn", "default"]);
}
