//! The operator's commands: `roster tenant …`, `roster token …`, `roster role …`. They work
//! directly on the database, as the operator, through the same gRPC handlers that serve
//! grpcurl (called in-process), so that they check and answer exactly as the API does.

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use roster_proto::v1 as pb;
use roster_proto::v1::access_service_server::AccessService;
use roster_proto::v1::admin_service_server::AdminService;
use roster_proto::v1::group_service_server::GroupService;
use roster_service::domain::PasswordPolicy;
use roster_service::grpc::LocalCaller;
use roster_service::{Api, Store, local_operator, local_request};

/// Where the operator's commands act.
#[derive(Args)]
pub struct Target {
    /// sqlite://PATH (the embedded default) or postgres://USER@HOST:PORT/DB.
    #[arg(
        long,
        env = "ROSTER_DATABASE_URL",
        default_value = "sqlite://roster.db"
    )]
    database_url: String,
    /// The tenant to act on.
    #[arg(long, env = "ROSTER_TENANT", default_value = "default")]
    tenant: String,
    /// The public SCIM base URL reported for tenants (as given to `roster serve`).
    #[arg(long, env = "ROSTER_PUBLIC_URL")]
    public_url: Option<String>,
}

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Creates a tenant and prints its name.
    Create {
        #[command(flatten)]
        target: Target,
        /// Lower-case letters, digits and `-`.
        name: String,
        /// What happens to SCIM passwords.
        #[arg(long, value_enum, default_value_t = Policy::Ignore)]
        password_policy: Policy,
    },
    /// Lists tenants: name, SCIM on/off, password policy, default role, SCIM base URL.
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Changes the tenant named by --tenant.
    Update {
        #[command(flatten)]
        target: Target,
        /// A new name.
        #[arg(long)]
        rename: Option<String>,
        /// Turns SCIM provisioning on or off (off: SCIM answers 403; gRPC still works).
        #[arg(long)]
        scim: Option<Switch>,
        #[arg(long, value_enum)]
        password_policy: Option<Policy>,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Mints a token and prints the secret alone on stdout (shown once; only its hash is
    /// kept). With --basic, prints `username:password` for HTTP Basic.
    Create {
        #[command(flatten)]
        target: Target,
        /// What the token may do.
        #[arg(long, value_enum, default_value_t = Kind::Scim)]
        kind: Kind,
        /// A note saying what the token is for.
        #[arg(long, default_value = "created with the roster CLI")]
        description: String,
        /// Service tokens: reads only.
        #[arg(long)]
        read_only: bool,
        /// Admin tokens: the id of the active admin user the token acts for.
        #[arg(long)]
        user: Option<String>,
        /// SCIM tokens: HTTP Basic credentials (Okta's "Basic Auth" mode) instead of a bearer.
        #[arg(long)]
        basic: bool,
        /// Seconds until the token stops working (default: never).
        #[arg(long)]
        ttl: Option<i64>,
    },
    /// Lists the tenant's tokens (never their secrets).
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Revokes a token at once.
    Revoke {
        #[command(flatten)]
        target: Target,
        /// The token's id (see `roster token list`).
        id: String,
    },
    /// A new secret for a token (printed as by `create`); the old one stops at once or after
    /// --grace seconds.
    Regenerate {
        #[command(flatten)]
        target: Target,
        id: String,
        #[arg(long, default_value_t = 0)]
        grace: i64,
    },
}

#[derive(Subcommand)]
pub enum RoleCommand {
    /// Lists the tenant's roles and their permissions (`*` marks the default).
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Adds a role to the tenant's catalog.
    Create {
        #[command(flatten)]
        target: Target,
        name: String,
        /// A permission it grants (repeat the flag), e.g. `templates.manage`.
        #[arg(long = "permission", required = true)]
        permissions: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Replaces a tenant role's permissions and description.
    Update {
        #[command(flatten)]
        target: Target,
        name: String,
        #[arg(long = "permission", required = true)]
        permissions: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Removes a tenant role that nothing uses.
    Delete {
        #[command(flatten)]
        target: Target,
        name: String,
    },
    /// Makes a role the default (users with no role and no mapped group).
    Default {
        #[command(flatten)]
        target: Target,
        name: String,
    },
    /// Maps a group (its id or display name) to a role with a priority (lowest number wins).
    Map {
        #[command(flatten)]
        target: Target,
        group: String,
        role: String,
        #[arg(long)]
        priority: i64,
    },
    /// Removes a group's role mapping.
    Unmap {
        #[command(flatten)]
        target: Target,
        group: String,
    },
    /// Lists group → role mappings by priority.
    Mappings {
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Kind {
    /// Provisioning from an identity provider (users and groups of one tenant).
    Scim,
    /// An internal service (users, groups, access checks; --read-only for reads only).
    Service,
    /// Everything in one tenant, including tokens and roles, while --user is an admin.
    Admin,
    /// Everything in every tenant.
    Operator,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Policy {
    /// SCIM passwords are accepted and dropped.
    Ignore,
    /// SCIM passwords are kept as Argon2id hashes.
    Hash,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

impl From<Kind> for pb::TokenKind {
    fn from(k: Kind) -> pb::TokenKind {
        match k {
            Kind::Scim => pb::TokenKind::Scim,
            Kind::Service => pb::TokenKind::Service,
            Kind::Admin => pb::TokenKind::Admin,
            Kind::Operator => pb::TokenKind::Operator,
        }
    }
}

impl From<Policy> for pb::PasswordPolicy {
    fn from(p: Policy) -> pb::PasswordPolicy {
        match p {
            Policy::Ignore => pb::PasswordPolicy::Ignore,
            Policy::Hash => pb::PasswordPolicy::Hash,
        }
    }
}

/// The API, as the operator acting on one tenant.
struct Operator {
    api: Api,
    caller: LocalCaller,
    tenant: String,
}

impl Operator {
    fn open(target: &Target) -> anyhow::Result<Operator> {
        let store = Store::open(&target.database_url, 1)?;
        let caller = local_operator(&store, &target.tenant)?;
        let api = Api::new(store, 1).with_scim_base_url(target.public_url.as_deref().unwrap_or(""));
        Ok(Operator {
            api,
            caller,
            tenant: target.tenant.clone(),
        })
    }

    fn req<T>(&self, message: T) -> tonic::Request<T> {
        local_request(&self.caller, message)
    }

    /// A group id, from an id or a display name.
    async fn group_id(&self, group: &str) -> anyhow::Result<String> {
        let filter = format!("displayName eq {}", serde_json::Value::from(group));
        let found = self
            .api
            .list_groups(self.req(pb::ListGroupsRequest {
                filter,
                page_size: 1,
                ..Default::default()
            }))
            .await
            .map_err(status)?
            .into_inner();
        Ok(found
            .groups
            .into_iter()
            .next()
            .map_or_else(|| group.to_owned(), |g| g.id))
    }
}

/// A gRPC status as the CLI reports it.
fn status(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}", s.message())
}

fn time(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(|t| {
        time::OffsetDateTime::from_unix_timestamp(t.seconds)
            .ok()
            .and_then(|d| {
                d.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
    })
    .unwrap_or_else(|| "-".to_owned())
}

fn print_tenant(t: &pb::Tenant) {
    let policy = match pb::PasswordPolicy::try_from(t.password_policy) {
        Ok(pb::PasswordPolicy::Hash) => "hash",
        _ => "ignore",
    };
    println!(
        "{}\tscim={}\tpasswords={policy}\tdefault_role={}\t{}",
        t.name,
        if t.scim_enabled { "on" } else { "off" },
        t.default_role,
        if t.scim_base_url.is_empty() {
            "-"
        } else {
            &t.scim_base_url
        },
    );
}

fn print_secret(created: pb::CreateTokenResponse) {
    match created.token {
        Some(t) if !t.basic_username.is_empty() => {
            println!("{}:{}", t.basic_username, created.secret);
        }
        _ => println!("{}", created.secret),
    }
}

fn print_role(r: &pb::Role) {
    println!(
        "{}{}\t{}\t{}",
        r.name,
        if r.is_default { " *" } else { "" },
        r.permissions.join(" "),
        r.description
    );
}

fn block_on<T>(f: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(f)
}

pub fn tenant(command: TenantCommand) -> anyhow::Result<()> {
    block_on(async move {
        match command {
            TenantCommand::Create {
                target,
                name,
                password_policy,
            } => {
                // Directly in the store: the first tenant has no operator to act as yet.
                let store = Store::open(&target.database_url, 1)?;
                let policy = match password_policy {
                    Policy::Ignore => PasswordPolicy::Ignore,
                    Policy::Hash => PasswordPolicy::Hash,
                };
                let t = roster_service::create_tenant(&store, &name, policy)?;
                println!("{}", t.name);
            }
            TenantCommand::List { target } => {
                let op = Operator::open(&target)?;
                let all = op
                    .api
                    .list_tenants(op.req(pb::ListTenantsRequest {}))
                    .await
                    .map_err(status)?
                    .into_inner();
                all.tenants.iter().for_each(print_tenant);
            }
            TenantCommand::Update {
                target,
                rename,
                scim,
                password_policy,
            } => {
                let op = Operator::open(&target)?;
                let mut tenant = pb::Tenant::default();
                let mut paths = Vec::new();
                if let Some(name) = rename {
                    tenant.name = name;
                    paths.push("name".to_owned());
                }
                if let Some(s) = scim {
                    tenant.scim_enabled = matches!(s, Switch::On);
                    paths.push("scim_enabled".to_owned());
                }
                if let Some(p) = password_policy {
                    tenant.password_policy = pb::PasswordPolicy::from(p) as i32;
                    paths.push("password_policy".to_owned());
                }
                anyhow::ensure!(
                    !paths.is_empty(),
                    "nothing to change: give --rename, --scim or --password-policy"
                );
                let t = op
                    .api
                    .update_tenant(op.req(pb::UpdateTenantRequest {
                        tenant: Some(tenant),
                        update_mask: Some(prost_types::FieldMask { paths }),
                    }))
                    .await
                    .map_err(status)?
                    .into_inner();
                print_tenant(&t);
            }
        }
        Ok(())
    })
}

pub fn token(command: TokenCommand) -> anyhow::Result<()> {
    block_on(async move {
        match command {
            TokenCommand::Create {
                target,
                kind,
                description,
                read_only,
                user,
                basic,
                ttl,
            } => {
                let op = Operator::open(&target)?;
                let created = op
                    .api
                    .create_token(op.req(pb::CreateTokenRequest {
                        tenant: op.tenant.clone(),
                        kind: pb::TokenKind::from(kind) as i32,
                        description,
                        ttl_seconds: ttl.unwrap_or(0),
                        read_only,
                        user_id: user.unwrap_or_default(),
                        basic_auth: basic,
                    }))
                    .await
                    .map_err(status)?
                    .into_inner();
                print_secret(created);
            }
            TokenCommand::List { target } => {
                let op = Operator::open(&target)?;
                let all = op
                    .api
                    .list_tokens(op.req(pb::ListTokensRequest {
                        tenant: op.tenant.clone(),
                    }))
                    .await
                    .map_err(status)?
                    .into_inner();
                println!("id\tprefix\tkind\tstate\tcreated\tlast used\texpires\tdescription");
                for t in all.tokens {
                    let kind = pb::TokenKind::try_from(t.kind)
                        .map(|k| {
                            k.as_str_name()
                                .trim_start_matches("TOKEN_KIND_")
                                .to_lowercase()
                        })
                        .unwrap_or_default();
                    println!(
                        "{}\t{}\t{kind}{}\t{}\t{}\t{}\t{}\t{}",
                        t.id,
                        t.prefix,
                        if t.read_only { " (read-only)" } else { "" },
                        if t.revoked { "revoked" } else { "live" },
                        time(t.create_time.as_ref()),
                        time(t.last_use_time.as_ref()),
                        time(t.expire_time.as_ref()),
                        t.description
                    );
                }
            }
            TokenCommand::Revoke { target, id } => {
                let op = Operator::open(&target)?;
                op.api
                    .revoke_token(op.req(pb::RevokeTokenRequest {
                        id: id.clone(),
                        tenant: op.tenant.clone(),
                    }))
                    .await
                    .map_err(status)?;
                println!("revoked {id}");
            }
            TokenCommand::Regenerate { target, id, grace } => {
                let op = Operator::open(&target)?;
                let created = op
                    .api
                    .regenerate_token(op.req(pb::RegenerateTokenRequest {
                        id,
                        grace_seconds: grace,
                        tenant: op.tenant.clone(),
                    }))
                    .await
                    .map_err(status)?
                    .into_inner();
                print_secret(created);
            }
        }
        Ok(())
    })
}

pub fn role(command: RoleCommand) -> anyhow::Result<()> {
    block_on(async move {
        match command {
            RoleCommand::List { target } => {
                let op = Operator::open(&target)?;
                let all = op
                    .api
                    .list_roles(op.req(pb::ListRolesRequest {}))
                    .await
                    .map_err(status)?
                    .into_inner();
                all.roles.iter().for_each(print_role);
            }
            RoleCommand::Create {
                target,
                name,
                permissions,
                description,
            } => {
                let op = Operator::open(&target)?;
                let r = op
                    .api
                    .create_role(op.req(pb::CreateRoleRequest {
                        name,
                        description,
                        permissions,
                    }))
                    .await
                    .map_err(status)?
                    .into_inner();
                print_role(&r);
            }
            RoleCommand::Update {
                target,
                name,
                permissions,
                description,
            } => {
                let op = Operator::open(&target)?;
                let r = op
                    .api
                    .update_role(op.req(pb::UpdateRoleRequest {
                        name,
                        description,
                        permissions,
                    }))
                    .await
                    .map_err(status)?
                    .into_inner();
                print_role(&r);
            }
            RoleCommand::Delete { target, name } => {
                let op = Operator::open(&target)?;
                op.api
                    .delete_role(op.req(pb::DeleteRoleRequest { name: name.clone() }))
                    .await
                    .map_err(status)?;
                println!("deleted {name}");
            }
            RoleCommand::Default { target, name } => {
                let op = Operator::open(&target)?;
                let r = op
                    .api
                    .set_default_role(op.req(pb::SetDefaultRoleRequest { role: name }))
                    .await
                    .map_err(status)?
                    .into_inner();
                print_role(&r);
            }
            RoleCommand::Map {
                target,
                group,
                role,
                priority,
            } => {
                let op = Operator::open(&target)?;
                let group_id = op.group_id(&group).await?;
                let m = op
                    .api
                    .set_group_role(op.req(pb::SetGroupRoleRequest {
                        group_id,
                        role,
                        priority,
                    }))
                    .await
                    .map_err(status)?
                    .into_inner();
                println!(
                    "{}\t{}\t{}\t{}",
                    m.priority, m.role, m.group_display_name, m.group_id
                );
            }
            RoleCommand::Unmap { target, group } => {
                let op = Operator::open(&target)?;
                let group_id = op.group_id(&group).await?;
                op.api
                    .remove_group_role(op.req(pb::RemoveGroupRoleRequest { group_id }))
                    .await
                    .map_err(status)?;
                println!("unmapped {group}");
            }
            RoleCommand::Mappings { target } => {
                let op = Operator::open(&target)?;
                let all = op
                    .api
                    .list_group_roles(op.req(pb::ListGroupRolesRequest {}))
                    .await
                    .map_err(status)?
                    .into_inner();
                for m in all.group_roles {
                    println!(
                        "{}\t{}\t{}\t{}",
                        m.priority, m.role, m.group_display_name, m.group_id
                    );
                }
            }
        }
        Ok(())
    })
}
