//! The user and groups a container's process runs as: securityContext (container
//! over pod, already merged in the model), else the image's `User`.

use serde::{Deserialize, Serialize};

use crate::model::{Container, Id};

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

/// A user (and group) name the bundle writer resolves in the rootfs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserLookup {
    pub user: String,
    pub group: Option<String>,
    /// `runAsGroup` was given: it wins over the passwd entry's group.
    pub keep_gid: bool,
}

/// The process's ids, and what is left to look up in the rootfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub lookup: Option<UserLookup>,
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
/// `User`; the pod's supplemental groups.
pub fn user(
    c: &Container,
    image_user_text: &str,
    supplemental_groups: &[Id],
) -> Result<User, UserError> {
    let sc = &c.security;
    let (uid, mut gid, lookup) = match sc.run_as_user {
        Some(uid) => (uid.get(), None, None),
        None => match image_user(image_user_text).map_err(UserError::ImageUser)? {
            UserSpec::Numeric { uid, gid } => (uid, gid, None),
            UserSpec::Named { user, group } => (
                // Placeholder ids until the bundle writer resolves the name.
                0,
                None,
                Some(UserLookup {
                    user,
                    group,
                    keep_gid: sc.run_as_group.is_some(),
                }),
            ),
        },
    };
    if let Some(g) = sc.run_as_group {
        gid = Some(g.get());
    }
    // Explicit runAsUser: 0 with runAsNonRoot is refused by validation; a named
    // user is checked once resolved.
    if sc.run_as_non_root && uid == 0 && lookup.is_none() {
        return Err(UserError::RootImageUser);
    }
    Ok(User {
        uid,
        gid: gid.unwrap_or(0),
        additional_gids: supplemental_groups.iter().map(|g| g.get()).collect(),
        lookup,
    })
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
        let lookup = |u: &str, keep| {
            Some(UserLookup {
                user: u.into(),
                group: None,
                keep_gid: keep,
            })
        };
        type Row = (&'static str, &'static str, u32, u32, Option<UserLookup>);
        let rows: [Row; 6] = [
            ("{}", "", 0, 0, None),
            ("{}", "1000:2000", 1000, 2000, None),
            ("{runAsUser: 5}", "1000:2000", 5, 0, None),
            ("{runAsUser: 5, runAsGroup: 6}", "1000:2000", 5, 6, None),
            ("{}", "www-data", 0, 0, lookup("www-data", false)),
            (
                "{runAsGroup: 7}",
                "www-data",
                0,
                7,
                lookup("www-data", true),
            ),
        ];
        for (sc, image, uid, gid, want) in rows {
            let u = user(&container(sc), image, &[Id::parse(9).unwrap()]).unwrap();
            assert_eq!((u.uid, u.gid, u.lookup), (uid, gid, want), "{sc} {image}");
            assert_eq!(u.additional_gids, [9]);
        }
    }

    #[test]
    fn run_as_non_root_refuses_a_root_image_user_and_leaves_a_name_for_later() {
        let c = container("{runAsNonRoot: true}");
        assert_eq!(user(&c, "", &[]), Err(UserError::RootImageUser));
        assert_eq!(user(&c, "0:0", &[]), Err(UserError::RootImageUser));
        assert!(user(&c, "1000", &[]).is_ok());
        // A name resolves in the rootfs; the bundle writer checks it then.
        assert!(user(&c, "app", &[]).unwrap().lookup.is_some());
        assert!(matches!(
            user(&c, "99999999999", &[]),
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
