//! Stock on hand: the balances of every `stock:` account with their lots' expiry dates, the
//! data of the dashboard's stock section and of the stock report.

use std::collections::HashMap;

use store::{BalanceFilter, PAGE_MAX};

use crate::dto::StockRow;
use crate::error::Result;
use crate::views::balance_view;
use crate::Service;

impl Service {
    /// Every non-zero stock balance, by location, then lot. Reads location by location, so
    /// the work grows with what is on hand, not with the size of the journal; and from one
    /// snapshot, so that stock moved between two pages is neither counted twice nor missed.
    pub async fn stock_on_hand(&self) -> Result<Vec<StockRow>> {
        let snapshot = self.store().snapshot().await?;
        let mut rows = Vec::new();
        let mut after_location: Option<String> = None;
        loop {
            let locations = self
                .store()
                .locations(after_location.as_deref(), PAGE_MAX)
                .await?;
            for l in &locations {
                let filter = BalanceFilter {
                    account: Some(format!("stock:{}", l.code())),
                    ..BalanceFilter::default()
                };
                let mut after = None;
                loop {
                    let page = snapshot.balances(&filter, after, PAGE_MAX).await?;
                    let full = page.len() == PAGE_MAX as usize;
                    after = page.last().map(|b| (b.account.clone(), b.lot.clone()));
                    let numbers: Vec<String> = page.iter().map(|b| b.lot.clone()).collect();
                    let expiry: HashMap<String, Option<String>> = snapshot
                        .lots(&numbers)
                        .await?
                        .into_iter()
                        .map(|lot| (lot.lot.to_string(), lot.expires_on.map(|d| d.to_string())))
                        .collect();
                    rows.extend(page.iter().map(|b| {
                        let v = balance_view(b);
                        StockRow {
                            location: l.code().to_string(),
                            expires_on: expiry.get(&v.lot).cloned().flatten(),
                            sku: v.sku,
                            lot: v.lot,
                            quantity: v.quantity,
                            value: v.value,
                        }
                    }));
                    if !full {
                        break;
                    }
                }
            }
            if locations.len() < PAGE_MAX as usize {
                break;
            }
            after_location = locations.last().map(|l| l.code().to_string());
        }
        Ok(rows)
    }
}
