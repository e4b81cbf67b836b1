//! Listing a group's members a page at a time, sorted by name. A page
//! token is the last name of the previous page: each page lists the names
//! after it, so a user who is a member for the whole listing appears
//! exactly once however others join and leave meanwhile. Both engines read
//! their pages through [`MemberQuery`] and [`MemberPage::assemble`]. Nothing
//! here knows gRPC or Redis.

use super::error::ChatError;
use super::names::check_name;
use super::registry::Name;

/// Members a page holds when the request asks for 0.
pub const DEFAULT_MEMBERS_LIMIT: u32 = 100;
/// Most members one page may hold.
pub const MAX_MEMBERS_LIMIT: u32 = 1000;

/// A checked request for a page of members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberQuery {
    /// List the names after this one (empty: from the first).
    pub after: String,
    /// Most names to return (1 to [`MAX_MEMBERS_LIMIT`]).
    pub limit: usize,
}

impl MemberQuery {
    /// A query from a request's fields.
    ///
    /// # Errors
    /// `InvalidLimit` over [`MAX_MEMBERS_LIMIT`]; `InvalidPageToken` for a
    /// token no page gave (not a valid name).
    pub fn new(limit: u32, page_token: &str) -> Result<MemberQuery, ChatError> {
        if limit > MAX_MEMBERS_LIMIT {
            return Err(ChatError::InvalidLimit {
                limit,
                max: MAX_MEMBERS_LIMIT,
            });
        }
        if !page_token.is_empty() && check_name(page_token).is_err() {
            return Err(ChatError::InvalidPageToken);
        }
        let limit = if limit == 0 {
            DEFAULT_MEMBERS_LIMIT
        } else {
            limit
        };
        Ok(MemberQuery {
            after: page_token.to_owned(),
            limit: limit as usize,
        })
    }
}

/// One page of a group's members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberPage {
    /// Sorted by name.
    pub members: Vec<Name>,
    /// The token of the next page; empty on the last.
    pub next_page_token: String,
    /// How many members the group has now.
    pub member_count: u32,
}

impl MemberPage {
    /// The page from `found`: the group's first names after
    /// `query.after`, sorted, at most `query.limit + 1` of them (one more
    /// than the page tells whether another follows).
    pub fn assemble(query: &MemberQuery, found: Vec<Name>, member_count: usize) -> MemberPage {
        let (members, next_page_token) = query.cut(found, |name| name);
        MemberPage {
            members,
            next_page_token,
            member_count: u32::try_from(member_count).unwrap_or(u32::MAX),
        }
    }

    /// The page of `members` (in any order) that `query` asks for.
    pub fn of<'a>(query: &MemberQuery, members: impl Iterator<Item = &'a Name>) -> MemberPage {
        let mut count = 0;
        let mut found = query.names_wanted(members.inspect(|_| count += 1));
        found.sort_unstable();
        MemberPage::assemble(query, found, count)
    }
}

impl MemberQuery {
    /// One page of `found` (sorted by name, at most `limit + 1` entries:
    /// one more than the page tells whether another follows), and the
    /// next page's token: the last name listed when more follow, else
    /// empty.
    pub fn cut<T>(&self, mut found: Vec<T>, name_of: impl Fn(&T) -> &str) -> (Vec<T>, String) {
        let more = found.len() > self.limit;
        found.truncate(self.limit);
        let next_page_token = match found.last() {
            Some(last) if more => name_of(last).to_owned(),
            _ => String::new(),
        };
        (found, next_page_token)
    }

    /// The names a page may hold, out of `names` (in any order): the
    /// `limit + 1` first after `after` (one more than the page tells
    /// whether another follows), in no particular order.
    pub fn names_wanted<'a>(&self, names: impl Iterator<Item = &'a Name>) -> Vec<Name> {
        let mut found: Vec<Name> = names
            .filter(|name| ***name > *self.after)
            .cloned()
            .collect();
        let wanted = self.limit + 1;
        if found.len() > wanted {
            found.select_nth_unstable(wanted - 1);
            found.truncate(wanted);
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn names(list: &[&str]) -> Vec<Name> {
        list.iter().map(|name| Arc::from(*name)).collect()
    }

    #[test]
    fn pages_follow_each_other_by_name() {
        let members = names(&["dave", "alice", "carol", "bob", "erin"]);
        let query = MemberQuery::new(2, "").unwrap();
        let first = MemberPage::of(&query, members.iter());
        assert_eq!(first.members, names(&["alice", "bob"]));
        assert_eq!(first.next_page_token, "bob");
        assert_eq!(first.member_count, 5);
        let query = MemberQuery::new(2, &first.next_page_token).unwrap();
        let second = MemberPage::of(&query, members.iter());
        assert_eq!(second.members, names(&["carol", "dave"]));
        let query = MemberQuery::new(2, &second.next_page_token).unwrap();
        let last = MemberPage::of(&query, members.iter());
        assert_eq!(last.members, names(&["erin"]));
        assert!(last.next_page_token.is_empty());
    }

    #[test]
    fn an_exact_last_page_has_no_token() {
        let members = names(&["a", "b"]);
        let page = MemberPage::of(&MemberQuery::new(2, "").unwrap(), members.iter());
        assert_eq!(page.members.len(), 2);
        assert!(page.next_page_token.is_empty());
    }

    #[test]
    fn limits_and_tokens_are_checked() {
        assert_eq!(MemberQuery::new(0, "").unwrap().limit, 100);
        assert_eq!(MemberQuery::new(1000, "").unwrap().limit, 1000);
        assert!(matches!(
            MemberQuery::new(1001, ""),
            Err(ChatError::InvalidLimit { .. })
        ));
        assert_eq!(
            MemberQuery::new(1, "not a name!"),
            Err(ChatError::InvalidPageToken)
        );
    }
}
