//! The authorization policy, declared once: which kind of token may call which RPC, on which
//! tenant, and with which fields. Every gRPC handler asks [`authorize`] before it does
//! anything else (before it even reads its request), and the field-level rules below where its
//! [`Rule::guards`] say so. The SCIM facade reaches the service through the same RPCs, so the
//! same table governs it.
//!
//! | RPCs | who | tenant |
//! |---|---|---|
//! | users, groups: reads | every kind | own |
//! | users, groups: writes | every kind but read-only service tokens | own |
//! | access checks, role catalog and mappings: reads | every kind | own |
//! | roles, default role, group→role mappings: writes | admin, operator | own |
//! | tokens: create, list, revoke, regenerate | admin, operator | own; another: operator |
//! | UpdateTenant | admin, operator | own; another: operator |
//! | CreateTenant, ListTenants | operator | every tenant |
//! | WhoAmI | every kind | own |
//!
//! Fields ([`Guard`]): only SCIM, admin and operator tokens set or change a user's `role` or
//! the members of a group mapped to a role (a service token never changes roles); an admin
//! acts only on tokens of the kinds it may create (SCIM, service, admin: never an operator
//! token, which it does not even see listed); only the operator renames a tenant. A token may
//! revoke or regenerate itself (the operator keeps `roster token create` on the host should it
//! cut its own).
//!
//! An admin token whose user is no longer an active admin, and a SCIM token of a tenant whose
//! SCIM provisioning is off, are refused everything (see [`Caller::of`]).

use super::{DomainError, Principal, TokenKind};

/// Every RPC of `roster.v1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rpc {
    CreateUser,
    GetUser,
    ListUsers,
    UpdateUser,
    DeleteUser,
    CreateGroup,
    GetGroup,
    ListGroups,
    UpdateGroup,
    DeleteGroup,
    AddGroupMembers,
    RemoveGroupMembers,
    ListGroupMembers,
    GetEffectiveRole,
    CheckPermission,
    ListRoles,
    CreateRole,
    UpdateRole,
    DeleteRole,
    SetDefaultRole,
    SetGroupRole,
    ListGroupRoles,
    RemoveGroupRole,
    CreateTenant,
    ListTenants,
    UpdateTenant,
    WhoAmI,
    CreateToken,
    ListTokens,
    RevokeToken,
    RegenerateToken,
}

const USERS: &str = "roster.v1.UserService";
const GROUPS: &str = "roster.v1.GroupService";
const ACCESS: &str = "roster.v1.AccessService";
const ADMIN: &str = "roster.v1.AdminService";

impl Rpc {
    pub const ALL: [Rpc; 31] = [
        Rpc::CreateUser,
        Rpc::GetUser,
        Rpc::ListUsers,
        Rpc::UpdateUser,
        Rpc::DeleteUser,
        Rpc::CreateGroup,
        Rpc::GetGroup,
        Rpc::ListGroups,
        Rpc::UpdateGroup,
        Rpc::DeleteGroup,
        Rpc::AddGroupMembers,
        Rpc::RemoveGroupMembers,
        Rpc::ListGroupMembers,
        Rpc::GetEffectiveRole,
        Rpc::CheckPermission,
        Rpc::ListRoles,
        Rpc::CreateRole,
        Rpc::UpdateRole,
        Rpc::DeleteRole,
        Rpc::SetDefaultRole,
        Rpc::SetGroupRole,
        Rpc::ListGroupRoles,
        Rpc::RemoveGroupRole,
        Rpc::CreateTenant,
        Rpc::ListTenants,
        Rpc::UpdateTenant,
        Rpc::WhoAmI,
        Rpc::CreateToken,
        Rpc::ListTokens,
        Rpc::RevokeToken,
        Rpc::RegenerateToken,
    ];

    /// Its gRPC service (fully qualified) and method name.
    pub fn name(self) -> (&'static str, &'static str) {
        match self {
            Rpc::CreateUser => (USERS, "CreateUser"),
            Rpc::GetUser => (USERS, "GetUser"),
            Rpc::ListUsers => (USERS, "ListUsers"),
            Rpc::UpdateUser => (USERS, "UpdateUser"),
            Rpc::DeleteUser => (USERS, "DeleteUser"),
            Rpc::CreateGroup => (GROUPS, "CreateGroup"),
            Rpc::GetGroup => (GROUPS, "GetGroup"),
            Rpc::ListGroups => (GROUPS, "ListGroups"),
            Rpc::UpdateGroup => (GROUPS, "UpdateGroup"),
            Rpc::DeleteGroup => (GROUPS, "DeleteGroup"),
            Rpc::AddGroupMembers => (GROUPS, "AddGroupMembers"),
            Rpc::RemoveGroupMembers => (GROUPS, "RemoveGroupMembers"),
            Rpc::ListGroupMembers => (GROUPS, "ListGroupMembers"),
            Rpc::GetEffectiveRole => (ACCESS, "GetEffectiveRole"),
            Rpc::CheckPermission => (ACCESS, "CheckPermission"),
            Rpc::ListRoles => (ACCESS, "ListRoles"),
            Rpc::CreateRole => (ACCESS, "CreateRole"),
            Rpc::UpdateRole => (ACCESS, "UpdateRole"),
            Rpc::DeleteRole => (ACCESS, "DeleteRole"),
            Rpc::SetDefaultRole => (ACCESS, "SetDefaultRole"),
            Rpc::SetGroupRole => (ACCESS, "SetGroupRole"),
            Rpc::ListGroupRoles => (ACCESS, "ListGroupRoles"),
            Rpc::RemoveGroupRole => (ACCESS, "RemoveGroupRole"),
            Rpc::CreateTenant => (ADMIN, "CreateTenant"),
            Rpc::ListTenants => (ADMIN, "ListTenants"),
            Rpc::UpdateTenant => (ADMIN, "UpdateTenant"),
            Rpc::WhoAmI => (ADMIN, "WhoAmI"),
            Rpc::CreateToken => (ADMIN, "CreateToken"),
            Rpc::ListTokens => (ADMIN, "ListTokens"),
            Rpc::RevokeToken => (ADMIN, "RevokeToken"),
            Rpc::RegenerateToken => (ADMIN, "RegenerateToken"),
        }
    }

    /// The RPC of a gRPC service and method (`roster.v1.UserService`, `CreateUser`).
    pub fn from_name(service: &str, method: &str) -> Option<Rpc> {
        Rpc::ALL.into_iter().find(|r| r.name() == (service, method))
    }

    /// The policy's rule for it.
    pub fn rule(self) -> Rule {
        use Guard::*;
        use Tenancy::*;
        let (callers, tenancy, guards): (&'static [Caller], Tenancy, &'static [Guard]) = match self
        {
            Rpc::GetUser | Rpc::ListUsers => (EVERYONE, Own, &[]),
            Rpc::CreateUser | Rpc::UpdateUser => (WRITERS, Own, &[UserRole]),
            Rpc::DeleteUser => (WRITERS, Own, &[]),
            Rpc::GetGroup | Rpc::ListGroups | Rpc::ListGroupMembers => (EVERYONE, Own, &[]),
            Rpc::CreateGroup => (WRITERS, Own, &[]),
            Rpc::UpdateGroup
            | Rpc::DeleteGroup
            | Rpc::AddGroupMembers
            | Rpc::RemoveGroupMembers => (WRITERS, Own, &[MappedGroup]),
            Rpc::GetEffectiveRole | Rpc::CheckPermission | Rpc::ListRoles | Rpc::ListGroupRoles => {
                (EVERYONE, Own, &[])
            }
            Rpc::CreateRole
            | Rpc::UpdateRole
            | Rpc::DeleteRole
            | Rpc::SetDefaultRole
            | Rpc::SetGroupRole
            | Rpc::RemoveGroupRole => (ADMINS, Own, &[]),
            Rpc::CreateTenant | Rpc::ListTenants => (OPERATOR, Every, &[]),
            Rpc::UpdateTenant => (ADMINS, Named { other: OPERATOR }, &[TenantName]),
            Rpc::WhoAmI => (EVERYONE, Own, &[]),
            Rpc::CreateToken | Rpc::ListTokens | Rpc::RevokeToken | Rpc::RegenerateToken => {
                (ADMINS, Named { other: OPERATOR }, &[TokenOfKind])
            }
        };
        Rule {
            callers,
            tenancy,
            guards,
            writes: !matches!(
                self,
                Rpc::GetUser
                    | Rpc::ListUsers
                    | Rpc::GetGroup
                    | Rpc::ListGroups
                    | Rpc::ListGroupMembers
                    | Rpc::GetEffectiveRole
                    | Rpc::CheckPermission
                    | Rpc::ListRoles
                    | Rpc::ListGroupRoles
                    | Rpc::ListTenants
                    | Rpc::WhoAmI
                    | Rpc::ListTokens
            ),
        }
    }
}

impl std::fmt::Display for Rpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name().1)
    }
}

/// Who calls, as far as the policy cares: the token's kind, and for service tokens whether
/// they may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Caller {
    Scim,
    ServiceReadOnly,
    ServiceReadWrite,
    /// An admin token whose user is an active admin.
    Admin,
    Operator,
}

const EVERYONE: &[Caller] = &Caller::ALL;
const WRITERS: &[Caller] = &[
    Caller::Scim,
    Caller::ServiceReadWrite,
    Caller::Admin,
    Caller::Operator,
];
const ADMINS: &[Caller] = &[Caller::Admin, Caller::Operator];
const OPERATOR: &[Caller] = &[Caller::Operator];
/// Those that may set or change roles (a user's own, or through a mapped group's members).
const ROLE_SETTERS: &[Caller] = &[Caller::Scim, Caller::Admin, Caller::Operator];

impl Caller {
    pub const ALL: [Caller; 5] = [
        Caller::Scim,
        Caller::ServiceReadOnly,
        Caller::ServiceReadWrite,
        Caller::Admin,
        Caller::Operator,
    ];

    /// The caller a token stands for; PERMISSION_DENIED for a token that may do nothing now:
    /// a SCIM token of a tenant whose SCIM provisioning is off, or an admin token whose user is
    /// not an active admin.
    pub fn of(p: &Principal) -> Result<Caller, DomainError> {
        p.require_enabled()?;
        Ok(match p.kind {
            TokenKind::Scim => Caller::Scim,
            TokenKind::Service if p.read_only => Caller::ServiceReadOnly,
            TokenKind::Service => Caller::ServiceReadWrite,
            TokenKind::Admin => Caller::Admin,
            TokenKind::Operator => Caller::Operator,
        })
    }

    fn describe(self) -> &'static str {
        match self {
            Caller::Scim => "a SCIM token",
            Caller::ServiceReadOnly => "a read-only service token",
            Caller::ServiceReadWrite => "a service token",
            Caller::Admin => "an admin token",
            Caller::Operator => "the operator token",
        }
    }
}

/// Which tenant an RPC acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tenancy {
    /// Always the caller's own: the request names no tenant, and another tenant's ids are
    /// NOT_FOUND.
    Own,
    /// The caller's own, or another one the request names: only `other` may name another.
    Named { other: &'static [Caller] },
    /// Tenants themselves (creating, listing): no one tenant's.
    Every,
}

/// A field-level rule an RPC's handler applies, with what the request or the stored state
/// says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Setting or changing a user's `role` ([`may_change_roles`]): a CreateUser with a role,
    /// an UpdateUser whose result's role differs from the stored one.
    UserRole,
    /// Changing the members of a group mapped to a role, or deleting it ([`may_change_roles`]):
    /// membership decides group-derived roles.
    MappedGroup,
    /// The kind of token created, listed, revoked or regenerated ([`may_manage_token`]).
    TokenOfKind,
    /// Renaming a tenant: the operator only.
    TenantName,
}

/// What the policy says of one RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Who may call it (on its own tenant).
    pub callers: &'static [Caller],
    pub tenancy: Tenancy,
    /// The field-level rules its handler applies.
    pub guards: &'static [Guard],
    /// Whether it changes anything (it runs on the store's write path).
    pub writes: bool,
}

fn denied(caller: Caller, what: impl std::fmt::Display) -> DomainError {
    DomainError::PermissionDenied(format!("{} may not {what}", caller.describe()))
}

/// Whether `p` may call `rpc` at all: the first thing every handler asks.
pub fn authorize(rpc: Rpc, p: &Principal) -> Result<Caller, DomainError> {
    let caller = Caller::of(p)?;
    if rpc.rule().callers.contains(&caller) {
        Ok(caller)
    } else {
        Err(denied(caller, format_args!("call {rpc}")))
    }
}

/// Whether `caller` may make `rpc` act on another tenant than its own (`other`).
pub fn authorize_tenant(rpc: Rpc, caller: Caller, other: bool) -> Result<(), DomainError> {
    match rpc.rule().tenancy {
        _ if !other => Ok(()),
        Tenancy::Named { other } if other.contains(&caller) => Ok(()),
        Tenancy::Every => Ok(()),
        Tenancy::Named { .. } | Tenancy::Own => {
            Err(denied(caller, format_args!("call {rpc} on another tenant")))
        }
    }
}

/// Whether `rpc` declares `guard` (a handler applying a guard its rule does not declare is a
/// bug the tests catch).
fn declared(rpc: Rpc, guard: Guard) -> Result<(), DomainError> {
    if rpc.rule().guards.contains(&guard) {
        Ok(())
    } else {
        Err(DomainError::internal(format!(
            "{rpc} applies the guard {guard:?} that its rule does not declare"
        )))
    }
}

/// [`Guard::UserRole`] and [`Guard::MappedGroup`]: whether `caller` may set or change roles
/// (SCIM, admin and operator tokens may; service tokens may not). When it may not, the handler
/// answers [`roles_denied`] to a request that would change one.
pub fn may_change_roles(rpc: Rpc, guard: Guard, caller: Caller) -> Result<bool, DomainError> {
    declared(rpc, guard)?;
    Ok(ROLE_SETTERS.contains(&caller))
}

/// The refusal of a role change by a caller that [`may_change_roles`] says may not.
pub fn roles_denied(guard: Guard, caller: Caller) -> DomainError {
    match guard {
        Guard::MappedGroup => denied(
            caller,
            "change the members of a group mapped to a role (that changes its members' roles)",
        ),
        _ => denied(caller, "set or change a user's role"),
    }
}

/// [`Guard::TokenOfKind`]: whether `caller` may create, see, revoke or regenerate a token of
/// `kind`: the operator any; an admin those it may create (SCIM, service, admin).
pub fn may_manage_token(rpc: Rpc, caller: Caller, kind: TokenKind) -> Result<(), DomainError> {
    declared(rpc, Guard::TokenOfKind)?;
    match (caller, kind) {
        (Caller::Operator, _) => Ok(()),
        (Caller::Admin, TokenKind::Scim | TokenKind::Service | TokenKind::Admin) => Ok(()),
        _ => Err(denied(
            caller,
            format_args!("act on {} tokens", kind.as_str()),
        )),
    }
}

/// [`Guard::TenantName`]: whether `caller` may rename a tenant.
pub fn may_rename_tenant(rpc: Rpc, caller: Caller) -> Result<(), DomainError> {
    declared(rpc, Guard::TenantName)?;
    if OPERATOR.contains(&caller) {
        Ok(())
    } else {
        Err(denied(caller, "rename a tenant"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// Every RPC of the wire contract has a rule, and every rule an RPC: a new RPC cannot be
    /// served before the policy says who may call it.
    #[test]
    fn every_rpc_of_the_contract_has_a_rule() {
        let set = prost_types::FileDescriptorSet::decode(roster_proto::FILE_DESCRIPTOR_SET)
            .expect("the descriptor set decodes");
        let mut seen = Vec::new();
        for file in set.file.iter().filter(|f| f.package() == "roster.v1") {
            for service in &file.service {
                let qualified = format!("roster.v1.{}", service.name());
                for method in &service.method {
                    let rpc = Rpc::from_name(&qualified, method.name()).unwrap_or_else(|| {
                        panic!("{qualified}/{} has no entry in the policy", method.name())
                    });
                    seen.push(rpc);
                }
            }
        }
        for rpc in Rpc::ALL {
            assert_eq!(
                seen.iter().filter(|r| **r == rpc).count(),
                1,
                "{rpc} is in the policy once and in the contract once"
            );
        }
        assert_eq!(seen.len(), Rpc::ALL.len());
    }

    #[test]
    fn read_only_tokens_never_reach_a_write() {
        for rpc in Rpc::ALL {
            let rule = rpc.rule();
            let ro = rule.callers.contains(&Caller::ServiceReadOnly);
            let rw = rule.callers.contains(&Caller::ServiceReadWrite);
            if rule.writes {
                assert!(!ro, "{rpc} writes: a read-only token may not call it");
            } else {
                assert_eq!(
                    ro, rw,
                    "{rpc} only reads: read-only or not makes no difference"
                );
            }
        }
    }

    #[test]
    fn only_the_operator_reaches_another_tenant() {
        for rpc in Rpc::ALL {
            for caller in Caller::ALL {
                let allowed = rpc.rule().callers.contains(&caller)
                    && authorize_tenant(rpc, caller, true).is_ok();
                let expected = caller == Caller::Operator && rpc.rule().tenancy != Tenancy::Own;
                assert_eq!(allowed, expected, "{rpc} by {caller:?} on another tenant");
            }
        }
    }

    #[test]
    fn admins_act_only_on_tokens_they_may_create() {
        use TokenKind::*;
        for kind in [Scim, Service, Admin, Operator] {
            assert!(may_manage_token(Rpc::RevokeToken, Caller::Operator, kind).is_ok());
            assert_eq!(
                may_manage_token(Rpc::RegenerateToken, Caller::Admin, kind).is_ok(),
                kind != Operator,
                "{kind:?}"
            );
        }
        // A guard the rule does not declare is a bug, not a permission.
        assert!(matches!(
            may_manage_token(Rpc::GetUser, Caller::Operator, Scim),
            Err(DomainError::Internal(_))
        ));
    }

    #[test]
    fn an_undeclared_guard_is_a_bug_not_a_permission() {
        assert!(matches!(
            may_change_roles(Rpc::ListUsers, Guard::UserRole, Caller::Scim),
            Err(DomainError::Internal(_))
        ));
        assert!(may_rename_tenant(Rpc::CreateTenant, Caller::Operator).is_err());
    }

    #[test]
    fn service_tokens_never_change_roles() {
        for caller in Caller::ALL {
            let ok = may_change_roles(Rpc::CreateUser, Guard::UserRole, caller)
                .expect("CreateUser declares the guard");
            assert_eq!(
                ok,
                !matches!(caller, Caller::ServiceReadOnly | Caller::ServiceReadWrite),
                "{caller:?}"
            );
        }
    }
}
