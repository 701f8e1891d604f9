-- Output of upstream's `alembic upgrade head --sql` (alembic 1.18.5, SQLAlchemy 2.0.51,
-- PostgreSQL dialect) at revision 1effe827d0cd: the reference the schema tests
-- compare against, and the way tests build a database "migrated by upstream".
BEGIN;

CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

-- Running upgrade  -> 1effe827d0cd

CREATE TABLE rstuf_target_roles (
    id SERIAL NOT NULL,
    rolename VARCHAR NOT NULL,
    expires TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    version INTEGER NOT NULL,
    active BOOLEAN NOT NULL,
    last_update TIMESTAMP WITHOUT TIME ZONE,
    PRIMARY KEY (id)
);

CREATE INDEX ix_rstuf_target_roles_id ON rstuf_target_roles (id);

CREATE UNIQUE INDEX ix_rstuf_target_roles_rolename ON rstuf_target_roles (rolename);

CREATE TYPE targetaction AS ENUM ('ADD', 'REMOVE');

CREATE TABLE rstuf_target_files (
    id SERIAL NOT NULL,
    path VARCHAR NOT NULL,
    info JSON NOT NULL,
    published BOOLEAN NOT NULL,
    action targetaction NOT NULL,
    last_update TIMESTAMP WITHOUT TIME ZONE,
    targets_role INTEGER,
    PRIMARY KEY (id),
    FOREIGN KEY(targets_role) REFERENCES rstuf_target_roles (id)
);

CREATE INDEX ix_rstuf_target_files_id ON rstuf_target_files (id);

CREATE UNIQUE INDEX ix_rstuf_target_files_path ON rstuf_target_files (path);

INSERT INTO alembic_version (version_num) VALUES ('1effe827d0cd') RETURNING alembic_version.version_num;

COMMIT;

