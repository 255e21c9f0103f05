//! The user and groups a container's process runs as: securityContext (container
//! over pod, already merged in the model), else the image's `User`.

use serde::{Deserialize, Serialize};

use crate::model::{Container, Id, SupplementalGroupsPolicy};

/// The image's `User` (`uid`, `uid:gid`, `name`, `name:group`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserSpec {
    Numeric {
        uid: u32,
        gid: Option<u32>,
    },
    /// A name to resolve against the image's /etc/passwd and /etc/group once the
    /// rootfs exists (containerd's `WithUser` does the same).
    Named {
        user: String,
        group: Option<String>,
    },
}

fn parse_id(text: &str, what: &str) -> Result<Option<u32>, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match text.parse::<u32>() {
        // 2^32-1 is (uid_t)-1, "no change", and never a valid id.
        Ok(id) if id != u32::MAX => Ok(Some(id)),
        _ => Err(format!(
            "Invalid value: {text:?}: {what} must be between 0 and 4294967294"
        )),
    }
}

/// Parses an image's `User`.
pub fn image_user(user: &str) -> Result<UserSpec, String> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    if u.is_empty() {
        return Ok(UserSpec::Numeric { uid: 0, gid: None });
    }
    let uid = parse_id(u, "uid")?;
    let gid = match g {
        Some(g) => parse_id(g, "gid")?,
        None => None,
    };
    Ok(match (uid, gid, g) {
        (Some(uid), gid, None) => UserSpec::Numeric { uid, gid },
        (Some(uid), Some(gid), Some(_)) => UserSpec::Numeric {
            uid,
            gid: Some(gid),
        },
        (_, _, g) => UserSpec::Named {
            user: u.to_string(),
            group: g.map(str::to_string),
        },
    })
}

/// What the bundle writer finishes in the rootfs, as containerd's `WithUser`,
/// `WithUserID` and `WithAdditionalGIDs` do: a user name's uid, the primary group
/// of a user given without one (its /etc/passwd entry's, else 0), and under
/// `supplementalGroupsPolicy: Merge` the groups /etc/group lists the user in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserLookup {
    /// A user name, or a uid (runAsUser's, or the image's numeric one).
    pub user: String,
    /// `runAsGroup` was given: it wins over the passwd entry's group.
    pub keep_gid: bool,
    /// `supplementalGroupsPolicy: Merge`: the image's groups of the user join.
    pub image_groups: bool,
}

/// The process's ids, and what is left to look up in the rootfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    /// The pod's groups: `supplementalGroups`, then `fsGroup` (the kubelet's
    /// determineEffectiveSecurityContext order). The bundle writer puts the
    /// primary group first and the image's groups between, as containerd does.
    pub additional_gids: Vec<u32>,
    pub lookup: UserLookup,
}

/// Why the image's user cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserError {
    /// The image's `User` does not parse.
    ImageUser(String),
    /// runAsNonRoot, and the image's user is root.
    RootImageUser,
}

/// The container's user: `runAsUser`/`runAsGroup` when set, else the image's
/// `User`; the pod's supplemental groups and `fsGroup`.
pub fn user(c: &Container, image_user_text: &str, pod: &PodGroups) -> Result<User, UserError> {
    let sc = &c.security;
    // The image's group is dropped, as the kubelet does (parseUserFromImageUser
    // keeps what is before the ':' and hands containerd only a uid or a user
    // name): `USER 1000:2000` runs with uid 1000's passwd group, as on a cluster.
    let (uid, name) = match sc.run_as_user {
        Some(uid) => (uid.get(), None),
        None => match image_user(image_user_text).map_err(UserError::ImageUser)? {
            UserSpec::Numeric { uid, .. } => (uid, None),
            // A placeholder uid until the bundle writer resolves the name.
            UserSpec::Named { user, .. } => (0, Some(user)),
        },
    };
    let gid = sc.run_as_group.map(|g| g.get());
    // Explicit runAsUser: 0 with runAsNonRoot is refused by validation; a named
    // user is checked once resolved.
    if sc.run_as_non_root && uid == 0 && name.is_none() {
        return Err(UserError::RootImageUser);
    }
    let mut additional_gids: Vec<u32> = pod.supplemental.iter().map(|g| g.get()).collect();
    additional_gids.extend(pod.fs_group.map(|g| g.get()));
    Ok(User {
        uid,
        gid: gid.unwrap_or(0),
        additional_gids,
        lookup: UserLookup {
            user: name.unwrap_or_else(|| uid.to_string()),
            keep_gid: sc.run_as_group.is_some(),
            image_groups: pod.policy == SupplementalGroupsPolicy::Merge,
        },
    })
}

/// The pod-level group settings every container's user takes.
#[derive(Debug, Clone, Default)]
pub struct PodGroups {
    pub supplemental: Vec<Id>,
    pub fs_group: Option<Id>,
    pub policy: SupplementalGroupsPolicy,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_user_forms_parse() {
        let cases = [
            ("", UserSpec::Numeric { uid: 0, gid: None }),
            (
                "1000",
                UserSpec::Numeric {
                    uid: 1000,
                    gid: None,
                },
            ),
            (
                "1000:50",
                UserSpec::Numeric {
                    uid: 1000,
                    gid: Some(50),
                },
            ),
            (
                "nobody",
                UserSpec::Named {
                    user: "nobody".into(),
                    group: None,
                },
            ),
            (
                "1000:staff",
                UserSpec::Named {
                    user: "1000".into(),
                    group: Some("staff".into()),
                },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(image_user(text).unwrap(), want, "{text}");
        }
    }

    fn container(security: &str) -> Container {
        let yaml = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n    - {{name: c, image: x, securityContext: {security}}}\n"
        );
        crate::translate::test_support::first_container(&yaml)
    }

    #[test]
    fn the_security_context_wins_over_the_image_user() {
        let lookup = |u: &str, keep| UserLookup {
            user: u.into(),
            keep_gid: keep,
            image_groups: true,
        };
        type Row = (&'static str, &'static str, u32, u32, UserLookup);
        let rows: [Row; 8] = [
            ("{}", "", 0, 0, lookup("0", false)),
            // The image's group is dropped, as the kubelet does.
            ("{}", "1000:2000", 1000, 0, lookup("1000", false)),
            ("{}", "www-data:staff", 0, 0, lookup("www-data", false)),
            // runAsUser alone: the group is the uid's passwd entry's, looked up.
            ("{runAsUser: 5}", "1000:2000", 5, 0, lookup("5", false)),
            (
                "{runAsUser: 5, runAsGroup: 6}",
                "1000:2000",
                5,
                6,
                lookup("5", true),
            ),
            ("{}", "www-data", 0, 0, lookup("www-data", false)),
            (
                "{runAsGroup: 7}",
                "www-data",
                0,
                7,
                lookup("www-data", true),
            ),
            (
                "{runAsGroup: 7}",
                "www-data:staff",
                0,
                7,
                lookup("www-data", true),
            ),
        ];
        let groups = PodGroups {
            supplemental: vec![Id::parse(9).unwrap(), Id::parse(4).unwrap()],
            fs_group: Some(Id::parse(2000).unwrap()),
            policy: SupplementalGroupsPolicy::Merge,
        };
        for (sc, image, uid, gid, want) in rows {
            let u = user(&container(sc), image, &groups).unwrap();
            assert_eq!((u.uid, u.gid, u.lookup), (uid, gid, want), "{sc} {image}");
            // supplementalGroups in order, then fsGroup.
            assert_eq!(u.additional_gids, [9, 4, 2000]);
        }
        let strict = PodGroups {
            policy: SupplementalGroupsPolicy::Strict,
            ..PodGroups::default()
        };
        let u = user(&container("{}"), "app", &strict).unwrap();
        assert!(!u.lookup.image_groups);
        assert!(u.additional_gids.is_empty());
    }

    #[test]
    fn run_as_non_root_refuses_a_root_image_user_and_leaves_a_name_for_later() {
        let c = container("{runAsNonRoot: true}");
        let none = PodGroups::default();
        assert_eq!(user(&c, "", &none), Err(UserError::RootImageUser));
        assert_eq!(user(&c, "0:0", &none), Err(UserError::RootImageUser));
        assert!(user(&c, "1000", &none).is_ok());
        // A name resolves in the rootfs; the bundle writer checks it then.
        assert_eq!(user(&c, "app", &none).unwrap().lookup.user, "app");
        assert!(matches!(
            user(&c, "99999999999", &none),
            Err(UserError::ImageUser(_))
        ));
    }

    #[test]
    fn out_of_range_numeric_ids_are_errors() {
        assert!(
            image_user("4294967296")
                .unwrap_err()
                .contains("uid must be between")
        );
        assert!(
            image_user("1:4294967295")
                .unwrap_err()
                .contains("gid must be between")
        );
    }
}
