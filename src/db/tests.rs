//! Tests against the local PostgreSQL (RSTUF_TEST_DB_SERVER, default
//! `postgresql://postgres@127.0.0.1:5432/postgres`). Each test works in its
//! own database `rstuf_test_<unique>`, dropped at the end, so tests run in
//! parallel with each other and with other test binaries.
use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use postgres::NoTls;
use serde_json::json;

use super::*;
use crate::testutil::{role_name, unique_name};
use crate::tuf::{RoleName, Version};

const EXPECTED_SCHEMA: &str = include_str!("../../tests/data/upstream-schema.txt");
const UPSTREAM_ALEMBIC_SQL: &str = include_str!("../../tests/data/upstream-schema.sql");

/// One line per enum, column, constraint, index, sequence and alembic
/// revision of schema `public`, in a fixed order, in PostgreSQL's own
/// rendering (format_type, pg_get_constraintdef, pg_indexes.indexdef).
const DESCRIBE_SCHEMA: &str = "
SELECT line FROM (
  SELECT 1 AS part, t.typname AS k1, 0 AS k2,
         format('enum %s (%s)', t.typname,
                string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)) AS line
    FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
   WHERE t.typnamespace = 'public'::regnamespace GROUP BY t.typname
  UNION ALL
  SELECT 2, c.relname, a.attnum,
         format('column %s.%s #%s %s %s%s%s', c.relname, a.attname, a.attnum,
                format_type(a.atttypid, a.atttypmod),
                CASE WHEN a.attnotnull THEN 'NOT NULL' ELSE 'NULL' END,
                coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), ''),
                CASE WHEN a.attidentity <> '' THEN ' IDENTITY ' || a.attidentity::text
                     ELSE '' END)
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
     AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 3, con.conname, 0,
         format('constraint %s on %s: %s', con.conname, con.conrelid::regclass,
                pg_get_constraintdef(con.oid))
    FROM pg_constraint con WHERE con.connamespace = 'public'::regnamespace
  UNION ALL
  SELECT 4, indexname, 0, format('index %s', indexdef)
    FROM pg_indexes WHERE schemaname = 'public'
  UNION ALL
  SELECT 5, s.relname, 0,
         format('sequence %s %s owned by %s', s.relname, format_type(q.seqtypid, NULL),
                coalesce((SELECT dc.relname || '.' || da.attname FROM pg_depend dep
                            JOIN pg_class dc ON dc.oid = dep.refobjid
                            JOIN pg_attribute da ON da.attrelid = dep.refobjid
                                                AND da.attnum = dep.refobjsubid
                           WHERE dep.objid = s.oid AND dep.deptype = 'a'), 'nobody'))
    FROM pg_class s JOIN pg_sequence q ON q.seqrelid = s.oid
   WHERE s.relnamespace = 'public'::regnamespace
  UNION ALL
  SELECT 6, version_num, 0, format('alembic_version %s', version_num) FROM alembic_version
) AS schema_lines ORDER BY part, k1, k2";

fn test_server() -> String {
    std::env::var("RSTUF_TEST_DB_SERVER")
        .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/postgres".into())
}

fn admin_config() -> Config {
    Config::from_settings(&test_server(), None, None, &Default::default()).unwrap()
}

fn admin() -> postgres::Client {
    admin_config()
        .to_postgres()
        .connect(NoTls)
        .unwrap_or_else(|e| panic!("test PostgreSQL at {} unreachable: {e}", test_server()))
}

/// A fresh database for one test, dropped (with its connections) on drop.
struct TestDb {
    name: String,
    config: Config,
}

impl TestDb {
    fn new() -> TestDb {
        let name = unique_name("rstuf_test_");
        admin()
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let mut config = admin_config();
        config.dbname = Some(name.clone());
        config.pool_size = 2;
        TestDb { name, config }
    }

    fn db(&self) -> Db {
        Db::connect(&self.config).unwrap()
    }

    fn migrated() -> (TestDb, Db) {
        let test = TestDb::new();
        let db = test.db();
        db.migrate().unwrap();
        (test, db)
    }

    /// A connection of its own, outside the pool (what another process sees).
    fn client(&self) -> postgres::Client {
        self.config.to_postgres().connect(NoTls).unwrap()
    }

    fn describe(&self) -> Vec<String> {
        let rows = self.client().query(DESCRIBE_SCHEMA, &[]).unwrap();
        rows.iter().map(|r| r.get(0)).collect()
    }

    fn terminate_backends(&self) -> i64 {
        let row = admin()
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&self.name],
            )
            .unwrap();
        row.get(0)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let dropped = admin().batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
        if let Err(e) = dropped {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

fn expected_schema() -> Vec<String> {
    EXPECTED_SCHEMA
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whole seconds since the epoch plus microseconds: what PostgreSQL keeps.
fn at(secs: u64, micros: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros)
}

fn new_role(name: &str, expires: SystemTime, version: u64) -> NewRole {
    NewRole {
        name: role_name(name),
        expires,
        version: Version(version),
    }
}

fn new_file(path: &str, info: serde_json::Value, role: RoleId) -> NewFile {
    NewFile {
        path: ArtifactPath::from(path),
        info,
        role,
    }
}

fn paths(files: &[TargetFile]) -> Vec<&str> {
    let mut paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    paths.sort();
    paths
}

// --- schema ------------------------------------------------------------

#[test]
fn migrate_creates_exactly_upstreams_schema() {
    let test = TestDb::new();
    let report = test.db().migrate().unwrap();
    assert_eq!(
        report,
        MigrationReport {
            applied: vec!["1effe827d0cd"],
            revision: "1effe827d0cd"
        }
    );
    assert_eq!(test.describe(), expected_schema());
}

#[test]
fn migrate_accepts_a_database_made_by_upstreams_alembic_unchanged() {
    let test = TestDb::new();
    let mut client = test.client();
    client.batch_execute(UPSTREAM_ALEMBIC_SQL).unwrap();
    client
        .batch_execute(
            "INSERT INTO rstuf_target_roles (rolename, expires, version, active) \
             VALUES ('bins-0', '2030-01-01 00:00:00', 4, true)",
        )
        .unwrap();
    // The fixture is what upstream's alembic made; it must read back as the
    // expected description, or the comparison below proves nothing.
    assert_eq!(test.describe(), expected_schema());

    let report = test.db().migrate().unwrap();
    assert_eq!(report.applied, Vec::<&str>::new());
    assert_eq!(test.describe(), expected_schema());
    let role = test
        .db()
        .active_role(&role_name("bins-0"))
        .unwrap()
        .unwrap();
    assert_eq!(
        (role.version, role.expires),
        (Version(4), at(1_893_456_000, 0))
    );
}

#[test]
fn migrate_twice_changes_nothing_the_second_time() {
    let (test, db) = TestDb::migrated();
    let report = db.migrate().unwrap();
    assert!(report.applied.is_empty());
    assert_eq!(test.describe(), expected_schema());
}

#[test]
fn concurrent_migrations_apply_the_schema_once() {
    let test = TestDb::new();
    let barrier = Arc::new(Barrier::new(2));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (db, barrier) = (test.db(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                db.migrate().map(|report| report.applied.len())
            })
        })
        .collect();
    let mut applied: Vec<usize> = workers
        .into_iter()
        .map(|w| w.join().unwrap().unwrap())
        .collect();
    applied.sort();
    assert_eq!(applied, vec![0, 1]);
    assert_eq!(test.describe(), expected_schema());
}

#[test]
fn migrate_refuses_an_unknown_alembic_revision() {
    let test = TestDb::new();
    let mut client = test.client();
    client.batch_execute(UPSTREAM_ALEMBIC_SQL).unwrap();
    client
        .batch_execute("UPDATE alembic_version SET version_num = 'a1b2c3d4e5f6'")
        .unwrap();
    let err = test.db().migrate().unwrap_err();
    assert!(matches!(&err, Error::UnknownRevision { revision, .. } if revision == "a1b2c3d4e5f6"));
    assert!(!err.is_transient());
}

#[test]
fn migrate_refuses_tables_without_a_recorded_revision() {
    let test = TestDb::new();
    let mut client = test.client();
    client.batch_execute(UPSTREAM_ALEMBIC_SQL).unwrap();
    client.batch_execute("DROP TABLE alembic_version").unwrap();
    let err = test.db().migrate().unwrap_err();
    assert_eq!(
        err.to_string(),
        "database schema is not usable: rstuf_target_roles, rstuf_target_files, targetaction \
         already exist but alembic_version records no revision; if this schema is upstream's, \
         record it with `INSERT INTO alembic_version VALUES ('1effe827d0cd')`"
    );
}

#[test]
fn migrate_refuses_a_revision_whose_tables_are_gone() {
    let test = TestDb::new();
    let mut client = test.client();
    client.batch_execute(UPSTREAM_ALEMBIC_SQL).unwrap();
    client
        .batch_execute("DROP TABLE rstuf_target_files")
        .unwrap();
    let err = test.db().migrate().unwrap_err();
    assert_eq!(
        err.to_string(),
        "database schema is not usable: alembic_version says 1effe827d0cd but \
         rstuf_target_files missing; restore it from a backup, or drop the rest (tables, type \
         targetaction, alembic_version) to start empty"
    );
}

// --- sessions ----------------------------------------------------------

#[test]
fn sessions_run_in_utc_and_store_naive_utc() {
    let (test, db) = TestDb::migrated();
    let session_zone: String = db
        .pool
        .get()
        .unwrap()
        .query_one("SHOW TimeZone", &[])
        .unwrap()
        .get(0);
    assert_eq!(session_zone, "UTC");

    db.create_roles(&[new_role("bins-0", at(1_900_000_000, 1), 1)])
        .unwrap();
    // Read as text by another session in another zone: naive UTC is stored.
    let mut client = test.client();
    client.batch_execute("SET TimeZone = 'Asia/Tokyo'").unwrap();
    let stored: String = client
        .query_one(
            "SELECT expires::text FROM rstuf_target_roles WHERE rolename = 'bins-0'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(stored, "2030-03-17 17:46:40.000001");
    let role = db.active_role(&role_name("bins-0")).unwrap().unwrap();
    let since_update = SystemTime::now()
        .duration_since(role.last_update.unwrap())
        .unwrap();
    assert!(since_update < Duration::from_secs(60), "{since_update:?}");
}

// --- roles -------------------------------------------------------------

#[test]
fn create_16384_bins_in_one_go_and_read_them_back() {
    let (_test, db) = TestDb::migrated();
    let roles: Vec<NewRole> = (0..16384)
        .map(|i| new_role(&format!("bins-{i:04x}"), at(1_900_000_000, i), 1))
        .collect();
    let started = std::time::Instant::now();
    db.create_roles(&roles).unwrap();
    eprintln!("created 16384 roles in {:?}", started.elapsed());

    let all = db.active_roles().unwrap();
    assert_eq!(all.len(), 16384);
    assert_eq!(all[0].name, role_name("bins-0000"));
    assert_eq!(all[16383].name, role_name("bins-3fff"));
    let role = db.active_role(&role_name("bins-00ff")).unwrap().unwrap();
    assert_eq!(
        (role.name.as_str(), role.version, role.expires, role.active),
        ("bins-00ff", Version(1), at(1_900_000_000, 255), true)
    );
}

#[test]
fn duplicate_role_names_are_refused_naming_the_role() {
    let (_test, db) = TestDb::migrated();
    db.create_roles(&[new_role("custom", at(1_900_000_000, 0), 1)])
        .unwrap();
    let err = db
        .create_roles(&[new_role("custom", at(1_900_000_000, 0), 1)])
        .unwrap_err();
    assert!(!err.is_transient());
    assert_eq!(
        err.to_string(),
        "database: cannot create 1 target role(s) 'custom': ERROR 23505: duplicate key value \
         violates unique constraint \"ix_rstuf_target_roles_rolename\" \
         (Key (rolename)=(custom) already exists.)"
    );
}

#[test]
fn versions_beyond_the_integer_column_are_refused() {
    let (_test, db) = TestDb::migrated();
    let err = db
        .create_roles(&[new_role("big", at(1_900_000_000, 0), 1 << 31)])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "database: cannot create 1 target role(s) 'big': version 2147483648 of role 'big' \
         does not fit the INTEGER column"
    );
    assert!(db.active_roles().unwrap().is_empty());
}

#[test]
fn deactivated_roles_are_hidden_but_their_names_stay_taken() {
    let (_test, db) = TestDb::migrated();
    db.create_roles(&[
        new_role("keep", at(1_900_000_000, 0), 1),
        new_role("gone", at(1_900_000_000, 0), 1),
    ])
    .unwrap();
    assert!(db.deactivate_role(&role_name("gone")).unwrap());
    assert!(!db.deactivate_role(&role_name("gone")).unwrap());
    assert_eq!(db.active_role(&role_name("gone")).unwrap(), None);
    assert!(db.role_name_taken(&role_name("gone")).unwrap());
    assert!(db.role_name_taken(&role_name("keep")).unwrap());
    assert!(!db.role_name_taken(&role_name("never")).unwrap());
    let names: Vec<RoleName> = db
        .active_roles()
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, vec![role_name("keep")]);
}

#[test]
fn a_stored_name_that_is_no_role_name_is_reported_with_its_row() {
    let (test, db) = TestDb::migrated();
    let id: i32 = test
        .client()
        .query_one(
            "INSERT INTO rstuf_target_roles (rolename, expires, version, active) \
             VALUES ('../x', '2000-01-01', 1, true) RETURNING id",
            &[],
        )
        .unwrap()
        .get(0);
    let expected =
        format!("rstuf_target_roles row with id {id}: invalid role name \"../x\": it contains '/'");
    assert_eq!(
        db.active_roles().unwrap_err().to_string(),
        format!("database: cannot read the active target roles: {expected}")
    );
    assert_eq!(
        db.roles_expiring_before(at(2_000_000_000, 0))
            .unwrap_err()
            .to_string(),
        format!("database: cannot read the roles about to expire: {expected}")
    );
}

#[test]
fn expiring_roles_are_active_ones_before_the_limit_by_name() {
    let (_test, db) = TestDb::migrated();
    db.create_roles(&[
        new_role("c", at(1_000, 0), 1),
        new_role("a", at(1_999, 999_999), 1),
        new_role("b", at(2_000, 0), 1),
        new_role("d", at(1_500, 0), 1),
    ])
    .unwrap();
    db.deactivate_role(&role_name("d")).unwrap();
    assert_eq!(
        db.roles_expiring_before(at(2_000, 0)).unwrap(),
        vec![role_name("a"), role_name("c")]
    );
}

#[test]
fn update_roles_sets_version_and_expiry_by_name() {
    let (_test, db) = TestDb::migrated();
    db.create_roles(&[
        new_role("x", at(1_000, 0), 1),
        new_role("y", at(1_000, 0), 1),
    ])
    .unwrap();
    let changed = db
        .update_roles(&[
            RoleUpdate {
                name: role_name("x"),
                version: Version(9),
                expires: at(5_000, 7),
            },
            RoleUpdate {
                name: role_name("unknown"),
                version: Version(2),
                expires: at(5_000, 7),
            },
        ])
        .unwrap();
    assert_eq!(changed, 1);
    let x = db.active_role(&role_name("x")).unwrap().unwrap();
    let y = db.active_role(&role_name("y")).unwrap().unwrap();
    assert_eq!((x.version, x.expires), (Version(9), at(5_000, 7)));
    assert_eq!((y.version, y.expires), (Version(1), at(1_000, 0)));
}

// --- files -------------------------------------------------------------

fn two_roles(db: &Db) -> (RoleId, RoleId) {
    db.create_roles(&[
        new_role("bins-0", at(1_900_000_000, 0), 1),
        new_role("bins-1", at(1_900_000_000, 0), 1),
    ])
    .unwrap();
    let id = |n: &str| db.active_role(&role_name(n)).unwrap().unwrap().id;
    (id("bins-0"), id("bins-1"))
}

#[test]
fn add_files_stores_info_unpublished_and_readds_like_upstream() {
    let (_test, db) = TestDb::migrated();
    let (bins0, bins1) = two_roles(&db);
    let info = json!({"length": 12, "hashes": {"sha256": "ab"}, "custom": {"ünï": [1, null]}});
    let added = db
        .add_files(&[
            new_file("a/x.tar.gz", info.clone(), bins0),
            new_file("b", json!({"length": 1, "hashes": {}}), bins1),
        ])
        .unwrap();
    assert_eq!(paths(&added), vec!["a/x.tar.gz", "b"]);
    let x = added
        .iter()
        .find(|f| f.path.as_str() == "a/x.tar.gz")
        .unwrap();
    assert_eq!(
        (&x.info, x.published, x.action, x.role),
        (&info, false, TargetAction::Add, Some(bins0))
    );

    // Published then removed, then re-added under the other role.
    let first = db.roles_with_files(&[role_name("bins-0")]).unwrap();
    db.commit_publication(&first[0].unpublished(), &[]).unwrap();
    db.remove_files(&[ArtifactPath::from("a/x.tar.gz")])
        .unwrap();
    let readded = db
        .add_files(&[new_file(
            "a/x.tar.gz",
            json!({"length": 13, "hashes": {}}),
            bins1,
        )])
        .unwrap();
    assert_eq!(readded.len(), 1);
    assert_eq!(
        (
            readded[0].id,
            &readded[0].info,
            readded[0].published,
            readded[0].action,
            readded[0].role
        ),
        (
            x.id,
            &json!({"length": 13, "hashes": {}}),
            false,
            TargetAction::Add,
            Some(bins1)
        )
    );
}

#[test]
fn add_files_with_a_repeated_path_keeps_the_last() {
    let (_test, db) = TestDb::migrated();
    let (bins0, _) = two_roles(&db);
    let added = db
        .add_files(&[
            new_file("p", json!({"length": 1}), bins0),
            new_file("p", json!({"length": 2}), bins0),
        ])
        .unwrap();
    assert_eq!(added.len(), 1);
    assert_eq!(added[0].info, json!({"length": 2}));
}

#[test]
fn remove_files_reports_only_rows_it_changed() {
    let (_test, db) = TestDb::migrated();
    let (bins0, _) = two_roles(&db);
    db.add_files(&[
        new_file("kept", json!({"length": 1}), bins0),
        new_file("removed-published", json!({"length": 2}), bins0),
        new_file("removed-pending", json!({"length": 3}), bins0),
    ])
    .unwrap();
    db.remove_files(&[
        ArtifactPath::from("removed-published"),
        ArtifactPath::from("removed-pending"),
    ])
    .unwrap();
    let role = db.roles_with_files(&[role_name("bins-0")]).unwrap();
    let published: Vec<FileStamp> = role[0]
        .files
        .iter()
        .filter(|f| f.path.as_str() != "removed-pending")
        .map(TargetFile::file_stamp)
        .collect();
    db.commit_publication(&published, &[]).unwrap();

    let removed = db
        .remove_files(&[
            ArtifactPath::from("kept"),
            ArtifactPath::from("removed-published"),
            ArtifactPath::from("removed-pending"),
            ArtifactPath::from("never-added"),
        ])
        .unwrap();
    assert_eq!(paths(&removed), vec!["kept", "removed-pending"]);
    assert!(removed
        .iter()
        .all(|f| f.action == TargetAction::Remove && !f.published));
}

#[test]
fn publication_flow_lists_roles_rebuilds_and_settles() {
    let (_test, db) = TestDb::migrated();
    let (bins0, bins1) = two_roles(&db);
    db.create_roles(&[new_role("bins-2", at(1_900_000_000, 0), 1)])
        .unwrap();
    let added = db
        .add_files(&[
            new_file("one", json!({"length": 1}), bins1),
            new_file("two", json!({"length": 2}), bins0),
            new_file("three", json!({"length": 3}), bins1),
        ])
        .unwrap();
    db.remove_files(&[ArtifactPath::from("three")]).unwrap();
    assert_eq!(
        db.roles_with_unpublished_files().unwrap(),
        vec![role_name("bins-0"), role_name("bins-1")]
    );

    let roles = db
        .roles_with_files(&[role_name("bins-1"), role_name("bins-2"), role_name("nope")])
        .unwrap();
    let summary: Vec<(&str, Vec<&str>, Vec<&str>)> = roles
        .iter()
        .map(|r| {
            (
                r.role.name.as_str(),
                r.files.iter().map(|f| f.path.as_str()).collect(),
                r.added().map(|f| f.path.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("bins-1", vec!["one", "three"], vec!["one"]),
            ("bins-2", vec![], vec![]),
        ]
    );

    let marked = db
        .commit_publication(
            &roles[0].unpublished(),
            &[RoleUpdate {
                name: role_name("bins-1"),
                version: Version(2),
                expires: at(1_900_086_400, 0),
            }],
        )
        .unwrap();
    assert_eq!(marked, 2);
    assert_eq!(
        db.roles_with_unpublished_files().unwrap(),
        vec![role_name("bins-0")]
    );
    let bins1_row = db.active_role(&role_name("bins-1")).unwrap().unwrap();
    assert_eq!(
        (bins1_row.version, bins1_row.expires),
        (Version(2), at(1_900_086_400, 0))
    );
    let ids: Vec<FileId> = added.iter().map(|f| f.id).collect();
    let two = added.iter().find(|f| f.path.as_str() == "two").unwrap().id;
    assert_eq!(db.unpublished_files(&ids).unwrap(), vec![two]);
}

#[test]
fn a_file_changed_after_reading_is_not_marked_published() {
    let (_test, db) = TestDb::migrated();
    let (bins0, _) = two_roles(&db);
    db.add_files(&[new_file("p", json!({"length": 1}), bins0)])
        .unwrap();
    let read = db.roles_with_files(&[role_name("bins-0")]).unwrap();
    // Another task re-adds the artifact while the role is being signed.
    let readded = db
        .add_files(&[new_file("p", json!({"length": 2}), bins0)])
        .unwrap();
    assert_ne!(readded[0].stamp, read[0].files[0].stamp);

    let marked = db.commit_publication(&read[0].unpublished(), &[]).unwrap();
    assert_eq!(marked, 0);
    assert_eq!(
        db.roles_with_unpublished_files().unwrap(),
        vec![role_name("bins-0")]
    );
    let marked = db
        .commit_publication(&[readded[0].file_stamp()], &[])
        .unwrap();
    assert_eq!(marked, 1);
}

#[test]
fn unpublished_rows_of_deactivated_roles_are_still_listed_like_upstream() {
    let (_test, db) = TestDb::migrated();
    let (bins0, _) = two_roles(&db);
    db.add_files(&[new_file("p", json!({"length": 1}), bins0)])
        .unwrap();
    db.deactivate_role(&role_name("bins-0")).unwrap();
    assert_eq!(
        db.roles_with_unpublished_files().unwrap(),
        vec![role_name("bins-0")]
    );
    assert!(db
        .roles_with_files(&[role_name("bins-0")])
        .unwrap()
        .is_empty());
}

// --- resilience --------------------------------------------------------

#[test]
fn terminated_idle_connections_are_replaced_without_error() {
    let (test, db) = TestDb::migrated();
    db.create_roles(&[new_role("r", at(1_900_000_000, 0), 1)])
        .unwrap();
    assert!(test.terminate_backends() >= 1);
    let role = db.active_role(&role_name("r")).unwrap();
    assert_eq!(role.map(|r| r.name), Some(role_name("r")));
}

#[test]
fn a_connection_terminated_mid_use_fails_transiently_then_recovers() {
    let (_test, db) = TestDb::migrated();
    {
        let mut client = db.pool.get().unwrap();
        let pid: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .unwrap()
            .get(0);
        let killed: bool = admin()
            .query_one("SELECT pg_terminate_backend($1)", &[&pid])
            .unwrap()
            .get(0);
        assert!(killed);
        let source = client.query_one("SELECT 1", &[]).unwrap_err();
        let err = Error::Query {
            operation: "read role 'r'".into(),
            source,
        };
        assert!(err.is_transient(), "{err}");
    }
    db.create_roles(&[new_role("r", at(1_900_000_000, 0), 1)])
        .unwrap();
    assert!(db.role_name_taken(&role_name("r")).unwrap());
}

#[test]
fn an_exhausted_pool_is_a_transient_error_naming_the_operation() {
    let test = TestDb::new();
    let mut config = test.config.clone();
    config.pool_size = 1;
    config.checkout_timeout = Duration::from_millis(200);
    let db = Db::connect(&config).unwrap();
    let _held = db.pool.get().unwrap();
    let err = db.active_role(&role_name("bins-0")).unwrap_err();
    assert!(matches!(&err, Error::Pool { operation, .. } if operation == "read role 'bins-0'"));
    assert!(err.is_transient());
}

#[test]
fn connecting_to_a_missing_database_is_a_lasting_error() {
    let mut config = admin_config();
    config.dbname = Some("rstuf_test_does_not_exist".into());
    let err = Db::connect(&config).err().unwrap();
    assert!(!err.is_transient());
    assert_eq!(
        err.to_string(),
        format!(
            "cannot connect to PostgreSQL at {}@{}:{}/rstuf_test_does_not_exist: FATAL 3D000: \
             database \"rstuf_test_does_not_exist\" does not exist; check RSTUF_DB_SERVER, \
             RSTUF_DB_USER, RSTUF_DB_PASSWORD and that the server is running",
            config.user, config.host, config.port
        )
    );
}

#[test]
fn an_unreachable_server_is_a_transient_error() {
    let mut config = admin_config();
    config.host = "127.0.0.1".into();
    config.port = 1; // nothing listens on tcpmux
    let err = Db::connect(&config).err().unwrap();
    assert!(err.is_transient(), "{err}");
}

// --- queries of the artifact actions (issue 5) --------------------------

#[test]
fn files_by_paths_returns_the_stored_rows_and_skips_unknown_paths() {
    let (_test, db) = TestDb::migrated();
    let (bins0, bins1) = two_roles(&db);
    let added = db
        .add_files(&[
            new_file("z", json!({"length": 2, "hashes": {"sha256": "02"}}), bins1),
            new_file("a", json!({"length": 1, "hashes": {"sha256": "01"}}), bins0),
        ])
        .unwrap();
    let found = db
        .files_by_paths(&[
            ArtifactPath::from("z"),
            ArtifactPath::from("missing"),
            ArtifactPath::from("a"),
        ])
        .unwrap();
    let mut expected = added.clone();
    expected.sort_by(|x, y| x.path.cmp(&y.path));
    assert_eq!(found, expected);
    assert!(db.files_by_paths(&[]).unwrap().is_empty());
}

#[test]
fn active_roles_named_leaves_out_unknown_and_deactivated_roles() {
    let (_test, db) = TestDb::migrated();
    let (bins0, _) = two_roles(&db);
    assert!(db.deactivate_role(&role_name("bins-1")).unwrap());
    let roles = db
        .active_roles_named(&[role_name("bins-1"), role_name("bins-0"), role_name("x")])
        .unwrap();
    let found: Vec<(&str, RoleId, u64)> = roles
        .iter()
        .map(|r| (r.name.as_str(), r.id, r.version.0))
        .collect();
    assert_eq!(found, vec![("bins-0", bins0, 1)]);
}
