//! The data sets `ppe seed NAME` loads. Their CSV files live in `seeds/<name>/` at the root
//! of the repository, the single source, and are embedded in the binary here so that
//! `ppe seed` works from any folder. Each file is loaded with `Service::import_csv`, the path
//! `ppe import` takes, in the order its kind depends on the others.

use service::import::ImportKind;

/// One CSV file of a data set.
#[derive(Debug, Clone, Copy)]
pub struct SeedFile {
    pub kind: ImportKind,
    /// The file's name in `seeds/<name>/`.
    pub file: &'static str,
    pub csv: &'static str,
}

/// A data set users can load.
#[derive(Debug, Clone, Copy)]
pub struct Seed {
    pub name: &'static str,
    pub description: &'static str,
    /// The files in the order they load: master data, bills of materials, then documents,
    /// each after what it refers to.
    pub files: &'static [SeedFile],
}

macro_rules! seed_file {
    ($dir:literal, $kind:ident, $file:literal) => {
        SeedFile {
            kind: ImportKind::$kind,
            file: $file,
            csv: include_str!(concat!("../../../seeds/", $dir, "/", $file)),
        }
    };
}

/// Every data set, by name.
pub const SEEDS: &[Seed] = &[Seed {
    name: "longgang-2020",
    description: "Longgang, Shenzhen, spring 2020: Arctic Light's goggles, filter boxes and UV \
                  lamps, Nanwan's 6 frontline batches, donations to hospitals in 6 countries",
    files: &[
        seed_file!("longgang-2020", Items, "items.csv"),
        seed_file!("longgang-2020", Parties, "parties.csv"),
        seed_file!("longgang-2020", Locations, "locations.csv"),
        seed_file!("longgang-2020", Boms, "boms.csv"),
        seed_file!("longgang-2020", Purchases, "purchases.csv"),
        seed_file!("longgang-2020", Receipts, "receipts.csv"),
        seed_file!("longgang-2020", Production, "production.csv"),
        seed_file!("longgang-2020", Batches, "batches.csv"),
        seed_file!("longgang-2020", Donations, "donations.csv"),
        seed_file!("longgang-2020", Acknowledgements, "acknowledgements.csv"),
    ],
}];

/// The data set called `name`.
pub fn find(name: &str) -> Option<&'static Seed> {
    SEEDS.iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_has_its_kinds_header() {
        for seed in SEEDS {
            for f in seed.files {
                let header = f.csv.lines().next().unwrap_or("");
                for column in header.split(',') {
                    assert!(
                        f.kind.columns().contains(&column),
                        "{}/{}: unknown column {column}",
                        seed.name,
                        f.file
                    );
                }
            }
        }
    }

    #[test]
    fn every_csv_file_of_a_seed_folder_is_loaded() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../seeds");
        for seed in SEEDS {
            let mut on_disk: Vec<String> = std::fs::read_dir(root.join(seed.name))
                .expect("the seed's folder")
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".csv"))
                .collect();
            on_disk.sort();
            let mut loaded: Vec<String> = seed.files.iter().map(|f| f.file.to_owned()).collect();
            loaded.sort();
            assert_eq!(on_disk, loaded, "{}", seed.name);
        }
    }
}
