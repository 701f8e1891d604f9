-- Schema of upstream RSTUF worker's alembic revision 1effe827d0cd ("initial db"),
-- written as PostgreSQL DDL by hand. Python and Rust workers share these tables,
-- so names, column order, types, indexes and constraint names must stay exactly
-- what alembic creates: the CLI's import reads columns by position, and
-- upstream's alembic must find the revision it expects.
--
-- Applied by rstuf-worker's migrate() in one transaction under an advisory lock.

-- Alembic creates its version table before running revisions; IF NOT EXISTS
-- keeps a database where alembic created the table but ran nothing usable.
CREATE TABLE IF NOT EXISTS alembic_version (
    version_num VARCHAR(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

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
    FOREIGN KEY (targets_role) REFERENCES rstuf_target_roles (id)
);

CREATE INDEX ix_rstuf_target_files_id ON rstuf_target_files (id);
CREATE UNIQUE INDEX ix_rstuf_target_files_path ON rstuf_target_files (path);

INSERT INTO alembic_version (version_num) VALUES ('1effe827d0cd');
