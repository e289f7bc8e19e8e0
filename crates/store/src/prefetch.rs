//! The keys a batch's first read looks up, and what it found put into the writer's state:
//! shared by both backends, each of which reads every kind of key in one round trip and
//! keeps only its SQL.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use ledger::{Account, Balance, Item, Location, Lot, LotNo, Needs, Party, Sku, State};

use crate::decode;
use crate::Result;

/// What is missing of a batch's needs, as the text keys the statements bind. The lots are
/// those asked for and those of the single balances, whose rows name them.
pub struct Lookups<'n> {
    needs: &'n Needs,
    items: Vec<&'n str>,
    parties: Vec<&'n str>,
    locations: Vec<&'n str>,
    lot_set: BTreeSet<&'n LotNo>,
    lots: Vec<&'n str>,
    /// Each single balance's account as stored, beside its lot in `balance_lots`.
    balance_accounts: Vec<String>,
    balance_lots: Vec<&'n str>,
    /// Each lot group's account as stored, beside its item in `group_skus`.
    group_accounts: Vec<String>,
    group_skus: Vec<&'n str>,
    holders: Vec<&'n str>,
}

/// The rows a prefetch read, decoded, kind by kind.
#[derive(Debug, Default)]
pub struct Found {
    pub items: Vec<Item>,
    pub parties: Vec<Party>,
    pub locations: Vec<Location>,
    pub lots: Vec<Lot>,
    /// (account as stored, lot, balance) of single balances that exist.
    pub balances: Vec<(String, String, Balance)>,
    /// Each open lot of a group, with its group's account as stored and its balance there.
    pub groups: Vec<(Lot, String, Balance)>,
    /// (lot, account as stored, balance) of each account that holds a lot.
    pub holders: Vec<(String, String, Balance)>,
}

impl<'n> Lookups<'n> {
    /// The keys of `missing` (what [`State::missing`] gave).
    pub fn of(missing: &'n Needs) -> Lookups<'n> {
        let n = missing;
        // The domain picks lots only out of stock accounts, and both backends look groups up
        // through an index that holds only guarded balances: a group of any other account
        // would silently come back empty.
        assert!(
            n.groups.iter().all(|(a, _)| a.guarded()),
            "lots are picked only from guarded accounts"
        );
        let lot_set: BTreeSet<&LotNo> = n
            .lots
            .iter()
            .chain(n.balances.iter().map(|(_, l)| l))
            .collect();
        Lookups {
            needs: n,
            items: n.items.iter().map(|k| k.as_str()).collect(),
            parties: n.parties.iter().map(|k| k.as_str()).collect(),
            locations: n.locations.iter().map(|k| k.as_str()).collect(),
            lots: lot_set.iter().map(|k| k.as_str()).collect(),
            lot_set,
            balance_accounts: n.balances.iter().map(|(a, _)| a.to_string()).collect(),
            balance_lots: n.balances.iter().map(|(_, l)| l.as_str()).collect(),
            group_accounts: n.groups.iter().map(|(a, _)| a.to_string()).collect(),
            group_skus: n.groups.iter().map(|(_, s)| s.as_str()).collect(),
            holders: n.holders.iter().map(|k| k.as_str()).collect(),
        }
    }

    pub fn items(&self) -> &[&'n str] {
        &self.items
    }
    pub fn parties(&self) -> &[&'n str] {
        &self.parties
    }
    pub fn locations(&self) -> &[&'n str] {
        &self.locations
    }
    /// The lots asked for and those of the single balances, each once.
    pub fn lots(&self) -> &[&'n str] {
        &self.lots
    }
    /// The single balances' accounts as stored, beside [`Lookups::balance_lots`].
    pub fn balance_accounts(&self) -> &[String] {
        &self.balance_accounts
    }
    pub fn balance_lots(&self) -> &[&'n str] {
        &self.balance_lots
    }
    /// The lot groups' accounts as stored, beside [`Lookups::group_skus`].
    pub fn group_accounts(&self) -> &[String] {
        &self.group_accounts
    }
    pub fn group_skus(&self) -> &[&'n str] {
        &self.group_skus
    }
    /// The lots whose holders are asked for.
    pub fn holders(&self) -> &[&'n str] {
        &self.holders
    }

    /// Whether there is no key to look up.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
            && self.parties.is_empty()
            && self.locations.is_empty()
            && self.lots.is_empty()
            && self.balance_lots.is_empty()
            && self.group_skus.is_empty()
            && self.holders.is_empty()
    }

    /// The single balances' keys as (account, lot) pairs.
    pub fn balance_pairs(&self) -> Vec<(&str, &str)> {
        pairs(&self.balance_accounts, &self.balance_lots)
    }

    /// The lot groups' keys as (account, item) pairs.
    pub fn group_pairs(&self) -> Vec<(&str, &str)> {
        pairs(&self.group_accounts, &self.group_skus)
    }

    /// Puts what was found into `state`, and every key looked up and not found as absent
    /// (a balance as zero, a group or a lot's holders as none).
    pub fn put(&self, found: Found, state: &mut State) -> Result<()> {
        let n = self.needs;
        put_found(
            found.items.into_iter().map(|x| (x.sku().clone(), x)),
            &n.items,
            |k, v| state.put_item(k, v),
        );
        put_found(
            found.parties.into_iter().map(|x| (x.code().clone(), x)),
            &n.parties,
            |k, v| state.put_party(k, v),
        );
        put_found(
            found.locations.into_iter().map(|x| (x.code().clone(), x)),
            &n.locations,
            |k, v| state.put_location(k, v),
        );
        put_found(
            found.lots.into_iter().map(|x| (x.lot.clone(), x)),
            self.lot_set.iter().copied(),
            |k, v| state.put_lot(k, v),
        );
        let by_key: HashMap<(&str, &str), Balance> = found
            .balances
            .iter()
            .map(|(account, lot, b)| ((account.as_str(), lot.as_str()), *b))
            .collect();
        for ((account, lot), text) in n.balances.iter().zip(&self.balance_accounts) {
            let b = by_key
                .get(&(text.as_str(), lot.as_str()))
                .copied()
                .unwrap_or_default();
            state.put_balance(account.clone(), lot.clone(), b);
        }
        put_lot_groups(state, &n.groups, &self.group_accounts, found.groups)?;
        // Each lot's holders in account order, whatever order the rows came in.
        let mut holders = found.holders;
        holders.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        let mut by_lot: BTreeMap<String, Vec<(ledger::Account, Balance)>> = BTreeMap::new();
        for (lot, account, b) in holders {
            by_lot
                .entry(lot)
                .or_default()
                .push((decode::account(&account)?, b));
        }
        for lot in &n.holders {
            let holders = by_lot.remove(lot.as_str()).unwrap_or_default();
            state.put_holders(lot.clone(), holders);
        }
        Ok(())
    }
}

/// Puts what a load found into the writer's state, each value under its key, and `None` under
/// every key of `wanted` it did not find, so that the state knows the key is absent: `put` is
/// the state's setter for the kind (items, parties, locations, lots).
fn put_found<'w, K, V>(
    found: impl IntoIterator<Item = (K, V)>,
    wanted: impl IntoIterator<Item = &'w K>,
    mut put: impl FnMut(K, Option<V>),
) where
    K: Clone + Eq + std::hash::Hash + 'w,
{
    let mut seen = HashSet::new();
    for (key, value) in found {
        seen.insert(key.clone());
        put(key, Some(value));
    }
    for key in wanted {
        if !seen.contains(key) {
            put(key.clone(), None);
        }
    }
}

/// Puts the lot groups a batch asked for into `state`, from the rows both backends read for
/// them: each a lot with the text of its group's account and its balance there. Every group
/// of `groups` (beside its account's text in `accounts`) is then marked loaded, with no lots
/// where no row named it.
fn put_lot_groups(
    state: &mut State,
    groups: &BTreeSet<(Account, Sku)>,
    accounts: &[String],
    rows: Vec<(Lot, String, Balance)>,
) -> Result<()> {
    let mut by_group: BTreeMap<(String, String), Vec<LotNo>> = BTreeMap::new();
    for (lot, text, balance) in rows {
        let no = lot.lot.clone();
        by_group
            .entry((text.clone(), lot.sku.to_string()))
            .or_default()
            .push(no.clone());
        state.put_lot(no.clone(), Some(lot));
        state.put_balance(decode::account(&text)?, no, balance);
    }
    for ((group, sku), text) in groups.iter().zip(accounts) {
        let lots = by_group
            .remove(&(text.clone(), sku.to_string()))
            .unwrap_or_default();
        state.put_group(group.clone(), sku.clone(), lots);
    }
    Ok(())
}

fn pairs<'a>(a: &'a [String], b: &[&'a str]) -> Vec<(&'a str, &'a str)> {
    a.iter()
        .map(String::as_str)
        .zip(b.iter().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything looked up is loaded after `put`, found or not: an item not found is known
    /// absent, a balance not found is zero, and a lot's holders come in account order
    /// whatever order the rows came in.
    #[test]
    fn every_key_is_loaded_found_or_not_and_holders_come_in_account_order() {
        let lot = |s: &str| LotNo::parse(s).expect("a lot");
        let account = |s: &str| decode::account(s).expect("an account");
        let mut needs = Needs::default();
        needs
            .items
            .insert(ledger::Sku::parse("NONE").expect("a sku"));
        needs.balances.insert((account("stock:RAW"), lot("L-2")));
        needs.holders.insert(lot("L-1"));
        let mut state = State::new(None);
        let l = Lookups::of(&needs);
        assert_eq!(l.lots(), ["L-2"], "a single balance's lot is looked up");
        let holder = |account: &str, qty| {
            let b = decode::balance(qty, qty * 10);
            ("L-1".to_owned(), account.to_owned(), b)
        };
        let found = Found {
            holders: vec![holder("stock:RAW", 3), holder("stock:FG", 5)],
            ..Found::default()
        };
        l.put(found, &mut state).expect("put");
        assert!(state.missing(&needs).is_empty(), "every key is loaded");
        assert_eq!(
            state.balance(&account("stock:RAW"), &lot("L-2")),
            Balance::default()
        );
        let held: Vec<(String, i64)> = state
            .holders(&lot("L-1"))
            .iter()
            .map(|(a, b)| (a.to_string(), b.qty.scaled()))
            .collect();
        assert_eq!(
            held,
            [("stock:FG".to_owned(), 5), ("stock:RAW".to_owned(), 3)]
        );
    }
}
