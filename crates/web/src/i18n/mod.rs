//! Languages: Chinese (zh-CN) and English. Every visible word comes from one table per
//! language (`en.rs`, `zh.rs`); both tables are `match`es over [`Msg`], so a message added
//! without its translation does not compile. Numbers and dates are formatted here for the
//! language; codes (sku, lot, party and location codes, document ids), amounts' digits and the
//! ledger's own refusal messages are shown as they are, never translated.

mod en;
mod zh;

use time::{Date, OffsetDateTime};

/// A language the pages speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    En,
    Zh,
}

/// How one language writes numbers and dates, and its words.
pub struct Locale {
    /// The BCP 47 tag, for `<html lang>` and the language cookie.
    pub tag: &'static str,
    /// The language's own name, shown in the switcher in that language.
    pub name: &'static str,
    pub decimal_sep: &'static str,
    pub group_sep: &'static str,
    pub text: fn(Msg) -> &'static str,
    pub date: fn(Date) -> String,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Zh, Lang::En];

    pub fn locale(self) -> &'static Locale {
        match self {
            Lang::En => &en::LOCALE,
            Lang::Zh => &zh::LOCALE,
        }
    }

    pub fn tag(self) -> &'static str {
        self.locale().tag
    }

    /// The words of a message.
    pub fn t(self, m: Msg) -> &'static str {
        (self.locale().text)(m)
    }

    /// A message with `{name}` placeholders filled in. Arguments are inserted as given, so
    /// codes and amounts pass through untranslated.
    pub fn tf(self, m: Msg, args: &[(&str, &str)]) -> String {
        let mut s = self.t(m).to_owned();
        for (k, v) in args {
            s = s.replace(&format!("{{{k}}}"), v);
        }
        s
    }

    /// A language named by a `?lang=` parameter or the language cookie: `zh`, `zh-CN`, `en`,
    /// `en-GB`, ... (case-insensitive).
    pub fn parse(s: &str) -> Option<Lang> {
        let primary = s.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The best language for an `Accept-Language` header: the supported language with the
    /// highest weight, the first listed on a tie; English when nothing listed is supported.
    pub fn negotiate(accept_language: Option<&str>) -> Lang {
        let Some(header) = accept_language else {
            return Lang::En;
        };
        let mut best: Option<(u32, Lang)> = None;
        for part in header.split(',') {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or("").trim();
            // Weights are read in thousandths as integers: q=0.8 -> 800.
            let mut weight = 1000u32;
            for p in pieces {
                if let Some(q) = p.trim().strip_prefix("q=") {
                    weight = parse_q(q).unwrap_or(0);
                }
            }
            if weight == 0 {
                continue;
            }
            if let Some(lang) = Lang::parse(tag) {
                if best.is_none_or(|(w, _)| weight > w) {
                    best = Some((weight, lang));
                }
            }
        }
        best.map_or(Lang::En, |(_, l)| l)
    }

    /// A plain decimal from the ledger (`-12345.6700`) with the language's digit grouping and
    /// decimal mark. Every digit is kept: amounts are exact and are never rounded for show.
    pub fn number(self, text: &str) -> String {
        let loc = self.locale();
        let (sign, unsigned) = match text.strip_prefix('-') {
            Some(rest) => ("-", rest),
            None => ("", text),
        };
        let (int, frac) = match unsigned.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (unsigned, None),
        };
        if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
            return text.to_owned();
        }
        let mut grouped = String::with_capacity(int.len() + int.len() / 3);
        for (i, c) in int.chars().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                grouped.push_str(loc.group_sep);
            }
            grouped.push(c);
        }
        match frac {
            Some(f) => format!("{sign}{grouped}{}{f}", loc.decimal_sep),
            None => format!("{sign}{grouped}"),
        }
    }

    /// A calendar date (`2020-03-17`) written for the language; anything else as it is.
    pub fn date(self, iso: &str) -> String {
        match ledger_date(iso) {
            Some(d) => (self.locale().date)(d),
            None => iso.to_owned(),
        }
    }

    /// A recording time (RFC 3339, UTC) as a date and a minute, marked UTC.
    pub fn datetime(self, rfc3339: &str) -> String {
        match OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339) {
            Ok(t) => {
                let t = t.to_offset(time::UtcOffset::UTC);
                format!(
                    "{} {:02}:{:02} UTC",
                    (self.locale().date)(t.date()),
                    t.hour(),
                    t.minute()
                )
            }
            Err(_) => rfc3339.to_owned(),
        }
    }
}

fn parse_q(q: &str) -> Option<u32> {
    let (int, frac) = q.split_once('.').unwrap_or((q, ""));
    let int: u32 = int.parse().ok()?;
    let mut thousandths = 0u32;
    for (i, c) in frac.chars().take(3).enumerate() {
        let d = c.to_digit(10)?;
        thousandths += d * 10u32.pow(2 - u32::try_from(i).ok()?);
    }
    Some((int * 1000 + thousandths).min(1000))
}

fn ledger_date(iso: &str) -> Option<Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(iso, &format).ok()
}

/// Every piece of visible text. Grouped by the page that uses it first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Msg {
    // The frame of every page.
    AppName,
    AppTagline,
    NavDashboard,
    NavPurchases,
    NavJournal,
    NavVerify,
    NavItems,
    NavParties,
    NavLocations,
    SignedInAs,
    SignOut,
    SkipToContent,
    LanguageSwitch,
    RoleAdmin,
    RoleManufacturer,
    RoleCoordinator,
    RoleAuditor,
    // Sign-in.
    SignInTitle,
    SignInIntro,
    SignInWhere,
    TokenLabel,
    SignInButton,
    SignInRefused,
    SignInEmpty,
    SignedOut,
    // Column and field names shared by many pages.
    Location,
    Item,
    Name,
    Lot,
    Lots,
    Quantity,
    Unit,
    Value,
    ExpiresOn,
    Date,
    Kind,
    Country,
    City,
    Parent,
    Decimals,
    ShelfLifeDays,
    Code,
    Total,
    NextPage,
    FirstPage,
    EarlierPage,
    LaterPage,
    LatestPage,
    NothingYet,
    Optional,
    // The dashboard.
    DashboardTitle,
    DashboardIntro,
    StockOnHand,
    StockEmpty,
    StockValueByLocation,
    ExpiringSoon,
    ExpiringNone,
    DaysLeft,
    ExpiredDaysAgo,
    ExpiresToday,
    InTransit,
    InTransitEmpty,
    Shipment,
    Destination,
    Dispatched,
    Acknowledged,
    Damaged,
    Outstanding,
    AgeDays,
    DonationsByCountry,
    DonationsEmpty,
    Declared,
    LedgerCost,
    Difference,
    DifferencePct,
    Status,
    StatusOk,
    StatusOver,
    StatusUnder,
    DeclaredVsCost,
    ProductionRuns,
    ProductionEmpty,
    Run,
    Product,
    GoodQty,
    ScrapQty,
    TotalCost,
    UnitCost,
    Variance,
    ChartNoData,
    CardStockValue,
    CardLots,
    CardExpiring,
    CardEntries,
    EarliestExpiry,
    // Purchases.
    PurchasesTitle,
    PurchasesIntro,
    PurchasesEmpty,
    PurchaseTitle,
    PurchaseId,
    Supplier,
    Currency,
    FxRate,
    TotalValue,
    Entry,
    Lines,
    Sku,
    UnitPrice,
    LineValue,
    PurchaseRecorded,
    NewPurchase,
    NewPurchaseIntro,
    AddLine,
    RecordPurchase,
    FormRefused,
    FxRateHint,
    LotHint,
    CurrencyHint,
    InBaseCurrency,
    // The journal and verify.
    JournalTitle,
    JournalIntro,
    JournalEmpty,
    Seq,
    Document,
    Actor,
    RecordedAt,
    Hash,
    Reverses,
    Memo,
    Postings,
    Account,
    EntryTitle,
    VerifyTitle,
    VerifyIntro,
    VerifyOk,
    VerifyFailed,
    Entries,
    HeadHash,
    FirstBadSeq,
    Problems,
    // Master data.
    ItemsTitle,
    PartiesTitle,
    LocationsTitle,
    ItemKindMaterial,
    ItemKindProduct,
    ItemKindSupply,
    PartyKindSupplier,
    PartyKindDonor,
    PartyKindChannel,
    PartyKindManufacturer,
    PartyKindHospital,
    PartyKindSubdistrict,
    PartyKindCommunity,
    EntryKindPurchase,
    EntryKindReceipt,
    EntryKindProduction,
    EntryKindDispatch,
    EntryKindAcknowledgement,
    EntryKindClose,
    EntryKindStockCount,
    EntryKindReversal,
    EntryKindPeriodClose,
    // Production, shipments, packing lists and recipients' links.
    NavRuns,
    NavBatches,
    NavDonations,
    FromLocation,
    ToLocation,
    Recipient,
    Received,
    Short,
    Note,
    Flag,
    Print,
    Posted,
    Reversed,
    Destinations,
    ShipmentDispatched,
    ShipmentPartly,
    ShipmentAcknowledged,
    ShipmentClosed,
    ShipmentRecorded,
    ShipmentNow,
    ClosedOn,
    KindBatch,
    KindDonation,
    Acknowledgements,
    NoAcknowledgements,
    AcknowledgementId,
    AcknowledgementIdHint,
    AcknowledgementIntro,
    AcknowledgementRecorded,
    RecordAcknowledgement,
    AckLinesHint,
    DeclaredBase,
    DeclaredValue,
    DeclaredValueHint,
    DonationsTitle,
    DonationsIntro,
    DonationTitle,
    DonationId,
    PerHospital,
    NewDonation,
    NewDonationIntro,
    RecipientHint,
    RecordDonation,
    PickLotHint,
    BatchesTitle,
    BatchesIntro,
    BatchesEmpty,
    BatchTitle,
    BatchId,
    Batches,
    PerSubdistrict,
    NewBatch,
    NewBatchIntro,
    RecordBatch,
    RunsTitle,
    RunsIntro,
    RunTitle,
    RunId,
    RunRecorded,
    RunReport,
    NewRun,
    NewRunIntro,
    RecordRun,
    BomVersion,
    OutputLot,
    OutputLotHint,
    RunExpiryHint,
    LaborCost,
    OverheadCost,
    MaterialCost,
    InBaseCurrencyHint,
    MaterialsConsumed,
    RunLinesHint,
    Material,
    StandardQty,
    ActualQty,
    ActualCost,
    ConsumedLots,
    PackingList,
    PackingListTitle,
    PackingListIntro,
    QrLabel,
    ScanToAcknowledge,
    LinkValidUntil,
    LinkUsedUp,
    ReceivedBy,
    Signature,
    LinkRefusedTitle,
    LinkInvalid,
    LinkExpired,
    LinkUsedUpText,
    RecipientTitle,
    RecipientIntro,
    RecipientHint2,
    RecipientThanksTitle,
    DateReceived,
    AlreadyRecorded,
    RecordWhatArrived,
    // Trace and recall.
    NavTrace,
    TraceTitle,
    TraceIntro,
    TraceBackward,
    TraceForward,
    RecallTitle,
    RecallIntro,
    RecallEmpty,
    NodeLot,
    NodeRun,
    NodeShipment,
    NodeRecipient,
    NodeLoss,
    NodeInTransit,
    // Errors.
    NotFoundTitle,
    NotFoundText,
    ForbiddenTitle,
    ForbiddenText,
    ErrorTitle,
    FormExpired,
    BackToDashboard,
}

impl Lang {
    /// A role's name in this language.
    pub fn role(self, role: service::auth::Role) -> &'static str {
        use service::auth::Role;
        self.t(match role {
            Role::Admin => Msg::RoleAdmin,
            Role::Manufacturer => Msg::RoleManufacturer,
            Role::Coordinator => Msg::RoleCoordinator,
            Role::Auditor => Msg::RoleAuditor,
        })
    }

    /// The name of a kind (item, party or entry kind) in this language; a kind this table does
    /// not know yet is shown as its code.
    pub fn kind(self, code: &str) -> &str {
        let m = match code {
            "material" => Msg::ItemKindMaterial,
            "product" => Msg::ItemKindProduct,
            "supply" => Msg::ItemKindSupply,
            "supplier" => Msg::PartyKindSupplier,
            "donor" => Msg::PartyKindDonor,
            "channel" => Msg::PartyKindChannel,
            "manufacturer" => Msg::PartyKindManufacturer,
            "hospital" => Msg::PartyKindHospital,
            "subdistrict" => Msg::PartyKindSubdistrict,
            "community" => Msg::PartyKindCommunity,
            "purchase" => Msg::EntryKindPurchase,
            "receipt" => Msg::EntryKindReceipt,
            "production" => Msg::EntryKindProduction,
            "dispatch" => Msg::EntryKindDispatch,
            "acknowledgement" => Msg::EntryKindAcknowledgement,
            "close" => Msg::EntryKindClose,
            "stock-count" => Msg::EntryKindStockCount,
            "reversal" => Msg::EntryKindReversal,
            "period-close" => Msg::EntryKindPeriodClose,
            "lot" => Msg::NodeLot,
            "run" => Msg::NodeRun,
            "shipment" => Msg::NodeShipment,
            "recipient" => Msg::NodeRecipient,
            "loss" => Msg::NodeLoss,
            "in-transit" => Msg::NodeInTransit,
            _ => return code,
        };
        self.t(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_highest_weight() {
        assert_eq!(Lang::negotiate(None), Lang::En);
        assert_eq!(Lang::negotiate(Some("zh-CN,zh;q=0.9,en;q=0.8")), Lang::Zh);
        assert_eq!(
            Lang::negotiate(Some("en-US,en;q=0.9,zh-CN;q=0.8")),
            Lang::En
        );
        assert_eq!(Lang::negotiate(Some("fr-FR,zh;q=0.5,en;q=0.4")), Lang::Zh);
        assert_eq!(Lang::negotiate(Some("de,fr")), Lang::En);
        assert_eq!(Lang::negotiate(Some("zh;q=0,en;q=0.1")), Lang::En);
        assert_eq!(Lang::negotiate(Some("en;q=0.5,zh-TW;q=0.7")), Lang::Zh);
    }

    #[test]
    fn numbers_keep_every_digit_and_group_thousands() {
        assert_eq!(Lang::En.number("1234567.8900"), "1,234,567.8900");
        assert_eq!(Lang::Zh.number("-4000.0000"), "-4,000.0000");
        assert_eq!(Lang::En.number("100"), "100");
        assert_eq!(Lang::En.number("3.333"), "3.333");
        assert_eq!(Lang::En.number("not a number"), "not a number");
    }

    #[test]
    fn dates_follow_the_language() {
        assert_eq!(Lang::En.date("2020-03-17"), "17 Mar 2020");
        assert_eq!(Lang::Zh.date("2020-03-17"), "2020年3月17日");
        assert_eq!(
            Lang::Zh.datetime("2020-03-17T08:05:00Z"),
            "2020年3月17日 08:05 UTC"
        );
        assert_eq!(Lang::En.date("soon"), "soon");
    }

    #[test]
    fn placeholders_are_filled_and_codes_pass_through() {
        assert_eq!(Lang::En.tf(Msg::EntryTitle, &[("seq", "7")]), "Entry 7");
        assert!(Lang::Zh.tf(Msg::EntryTitle, &[("seq", "7")]).contains('7'));
        assert_eq!(Lang::Zh.kind("hospital"), "医院");
        assert_eq!(Lang::Zh.kind("not-a-kind-yet"), "not-a-kind-yet");
    }
}
