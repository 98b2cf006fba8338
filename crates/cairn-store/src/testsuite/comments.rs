//! Conformance: comments (written with resolved mentions, listed per target oldest first,
//! found by id, deleted, audited without their text), comments mentioning a user, global
//! search confined to projects (names by prefix, runs by id and tag, comments by text), teams
//! with members and roles, site-role changes, and the audit log read newest first.

use cairn_domain::audit::RequestContext;
use cairn_domain::comments::CommentTarget;
use cairn_domain::entities::Tag;
use cairn_domain::global_search::{HitKind, SearchTerm};
use cairn_domain::identity::{Principal, ProjectRole, SiteRole};

use super::ctx;
use crate::{AuditQuery, LogBatch, NewRun, NewUser, Store};

async fn user(store: &Store, name: &str) -> cairn_domain::identity::User {
    let new_user = NewUser {
        username: name.into(),
        display_name: None,
        email: None,
        password_hash: None,
        site_role: SiteRole::Member,
        service_account: false,
    };
    store.create_user(&ctx(), &new_user).await.expect("user")
}

fn acting_as(user: &cairn_domain::identity::User) -> RequestContext {
    let principal = Principal {
        user_id: user.id,
        username: user.username.clone(),
        site_role: user.site_role,
        service_account: false,
        scope_project: None,
    };
    RequestContext::user(principal, Some("comment-test".into()))
}

pub(super) async fn run(store: &Store) {
    let ada = user(store, "c-ada").await;
    let bo = user(store, "c-bo").await;
    let gone = user(store, "c-gone").await;
    store.set_user_active(&ctx(), "c-gone", false).await.expect("deactivate");
    let alpha = store.create_project(&ctx(), "c-alpha", Some("alpha team")).await.expect("alpha");
    let beta = store.create_project(&ctx(), "c-beta", None).await.expect("beta");
    let experiment =
        store.create_experiment(&ctx(), alpha.id, "c-churn", None, &[]).await.expect("exp");
    let new_run = NewRun {
        experiment_id: experiment,
        user_id: "c-ada".into(),
        run_name: Some("c-lr-0.1".into()),
        ..NewRun::default()
    };
    let run = store.create_run(&ctx(), &new_run).await.expect("run");
    let run_id = run.info.run_id.clone();
    let batch = LogBatch {
        tags: vec![Tag { key: "c-team".into(), value: "vision".into() }],
        ..LogBatch::default()
    };
    store.log_batch(&ctx(), &run_id, &batch).await.expect("tag");

    // Writing: mentions resolve to existing active users only; the author is the actor.
    let on_run = CommentTarget::Run(run_id.clone());
    let mentions = vec!["c-bo".to_string(), "c-gone".to_string(), "nobody".to_string()];
    let first = store
        .create_comment(&acting_as(&ada), &alpha, &on_run, "<b>look</b> @c-bo", &mentions)
        .await
        .expect("comment");
    assert_eq!(
        (first.author.as_str(), first.mentions.as_slice()),
        ("c-ada", ["c-bo".to_string()].as_slice())
    );
    assert_eq!(first.target, format!("run:{run_id}"));
    let on_version = CommentTarget::ModelVersion { name: "c-model".into(), version: 2 };
    let second = store
        .create_comment(&acting_as(&bo), &alpha, &on_version, "fine by me", &[])
        .await
        .expect("2");
    let third = store
        .create_comment(&acting_as(&bo), &alpha, &on_run, "second thought", &["c-ada".into()])
        .await
        .expect("3");
    let elsewhere = store
        .create_comment(&acting_as(&bo), &beta, &CommentTarget::Project, "beta churn note", &[])
        .await
        .expect("beta");

    // Reading: per target oldest first, per project, after an id, by id.
    let listed = store.list_comments(alpha.id, Some(&on_run), 0, 10).await.expect("list");
    let ids: Vec<i64> = listed.iter().map(|comment| comment.id).collect();
    assert_eq!(ids, [first.id, third.id]);
    assert_eq!(listed[0], first, "stored as written, mentions included");
    assert_eq!(listed[1].mentions, ["c-ada"]);
    let all = store.list_comments(alpha.id, None, 0, 10).await.expect("all");
    assert_eq!(all.len(), 3, "the project's comments only");
    let later = store.list_comments(alpha.id, None, first.id, 1).await.expect("page");
    assert_eq!(later.iter().map(|c| c.id).collect::<Vec<_>>(), [second.id]);
    let record = store.get_comment(second.id).await.expect("get");
    assert_eq!((record.project_id, record.author_id), (alpha.id, Some(bo.id)));
    assert_eq!(record.comment.target, "model_version:c-model/2");
    let mine = store.comments_mentioning(bo.id, None, 10).await.expect("mentions");
    assert_eq!(mine.iter().map(|c| c.id).collect::<Vec<_>>(), [first.id]);
    assert!(store.comments_mentioning(bo.id, Some(&[beta.id]), 10).await.expect("none").is_empty());
    assert!(store.comments_mentioning(gone.id, None, 10).await.expect("gone").is_empty());

    // Deleting: the row and its mentions go; both actions are audited without the text.
    store.delete_comment(&acting_as(&ada), first.id).await.expect("delete");
    assert!(store.get_comment(first.id).await.is_err());
    assert!(store.delete_comment(&ctx(), first.id).await.is_err(), "gone already");
    assert!(store.comments_mentioning(bo.id, None, 10).await.expect("none").is_empty());
    let query = AuditQuery { action: Some("comment.".into()), limit: 10, ..AuditQuery::default() };
    let (records, _) = store.search_audit(&query).await.expect("audit");
    let actions: Vec<(&str, &str)> =
        records.iter().map(|r| (r.action.as_str(), r.target.as_str())).collect();
    assert_eq!(actions.len(), 5);
    assert_eq!(actions[4], ("comment.delete", format!("comment:{}", first.id).as_str()));
    assert!(records.iter().all(|record| !record.details.contains("look")), "no text in the log");
    assert!(records[0].details.contains("c-bo"), "mentions are");

    // Newest first, with a keyset bound.
    let newest = AuditQuery { newest_first: true, ..query.clone() };
    let (records, more) =
        store.search_audit(&AuditQuery { limit: 2, ..newest.clone() }).await.expect("desc");
    assert!(more);
    assert_eq!(records[0].action, "comment.delete");
    assert!(records[0].seq > records[1].seq);
    let before = AuditQuery { before_seq: Some(records[1].seq), limit: 10, ..newest };
    let (older, more) = store.search_audit(&before).await.expect("older");
    assert!(!more);
    assert_eq!(older.len(), 3);
    assert!(older.iter().all(|record| record.seq < records[1].seq));

    // Global search: names by prefix, confined to the given projects.
    let term = |raw: &str| SearchTerm::parse(raw).expect("term");
    let kinds = |hits: &[cairn_domain::global_search::SearchHit]| {
        hits.iter().map(|hit| (hit.kind, hit.title.clone())).collect::<Vec<_>>()
    };
    let hits = store.global_search(&term("c-"), Some(&[alpha.id]), 10).await.expect("search");
    let found = kinds(&hits);
    assert!(found.contains(&(HitKind::Project, "c-alpha".into())), "{found:?}");
    assert!(found.contains(&(HitKind::Experiment, "c-churn".into())), "{found:?}");
    assert!(found.contains(&(HitKind::Run, "c-lr-0.1".into())), "{found:?}");
    assert!(!found.contains(&(HitKind::Project, "c-beta".into())), "another project: {found:?}");
    let everywhere = store.global_search(&term("c-"), None, 10).await.expect("all");
    assert!(kinds(&everywhere).contains(&(HitKind::Project, "c-beta".into())));
    assert!(store.global_search(&term("c-"), Some(&[]), 10).await.expect("nothing").is_empty());
    let hits = store.global_search(&term("C-"), Some(&[alpha.id]), 10).await.expect("case");
    assert!(hits.iter().all(|hit| hit.kind == HitKind::Comment), "names are case-sensitive");
    let limited = store.global_search(&term("c-"), None, 1).await.expect("limit");
    assert_eq!(limited.iter().filter(|hit| hit.kind == HitKind::Project).count(), 1);

    // Runs by id and by tag; comments by text, case-insensitively, with their target.
    let by_id = store.global_search(&term(&run_id.to_uppercase()), None, 10).await.expect("id");
    let run_hit = by_id.iter().find(|hit| hit.kind == HitKind::Run).expect("run by id");
    assert_eq!((run_hit.id.as_str(), run_hit.project.as_str()), (run_id.as_str(), "c-alpha"));
    let by_tag = store.global_search(&term("c-team=vis"), None, 10).await.expect("tag");
    let tag_hit = by_tag.iter().find(|hit| hit.kind == HitKind::Run).expect("run by tag");
    assert!(tag_hit.detail.contains("c-team=vision"), "{tag_hit:?}");
    let by_text = store.global_search(&term("THOUGHT"), None, 10).await.expect("text");
    let comment_hit = by_text.iter().find(|hit| hit.kind == HitKind::Comment).expect("comment");
    assert_eq!(comment_hit.id, third.id.to_string());
    assert_eq!(comment_hit.target.as_deref(), Some(format!("run:{run_id}").as_str()));
    let confined = store.global_search(&term("churn"), Some(&[alpha.id]), 10).await.expect("c");
    assert!(confined.iter().all(|hit| hit.project == "c-alpha"), "{confined:?}");
    let wildcard = store.global_search(&term("%"), None, 10).await.expect("wildcard");
    assert!(wildcard.iter().all(|hit| hit.kind != HitKind::Comment), "% is literal");
    assert!(elsewhere.id > 0);

    // Teams with members and roles; a site role change is audited.
    store.create_team(&ctx(), "c-team-a").await.expect("team");
    store.set_team_membership(&ctx(), "c-team-a", ada.id, "c-ada", true).await.expect("member");
    store.set_project_team(&ctx(), &alpha, "c-team-a", Some(ProjectRole::Viewer)).await.expect("r");
    let teams = store.list_teams().await.expect("teams");
    let team = teams.iter().find(|team| team.name == "c-team-a").expect("listed");
    assert_eq!(team.members, ["c-ada"]);
    assert_eq!(team.projects, [("c-alpha".to_string(), ProjectRole::Viewer)]);
    let promoted =
        store.set_site_role(&ctx(), "c-bo", SiteRole::GovernanceReviewer).await.expect("role");
    assert_eq!(promoted.site_role, SiteRole::GovernanceReviewer);
    assert!(store.set_site_role(&ctx(), "c-nobody", SiteRole::Admin).await.is_err());
    let query =
        AuditQuery { action: Some("user.site_role".into()), limit: 5, ..AuditQuery::default() };
    let (records, _) = store.search_audit(&query).await.expect("audit");
    assert_eq!(records.len(), 1);
    assert!(records[0].details.contains("governance-reviewer"), "{}", records[0].details);
}
