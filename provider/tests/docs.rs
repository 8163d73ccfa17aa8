//! The reference pages under docs/provider are generated from the schemas and examples; this fails
//! when one is stale, missing or left over. `ORGSEC_UPDATE_DOCS=1` rewrites them instead
//! (`cargo xtask docs`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use terraform_provider_orgsec::docs::{self, DOCS_DIR};
use terraform_provider_orgsec::framework::{Nesting, Provider};
use terraform_provider_orgsec::{data_sources, resources};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the provider sits in the workspace").to_path_buf()
}

/// Every .md file under `dir`, relative to the repository root.
fn existing(dir: &Path, root: &Path, out: &mut BTreeSet<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            existing(&p, root, out);
        } else if p.extension().is_some_and(|x| x == "md") {
            out.insert(p.strip_prefix(root).expect("under root").to_string_lossy().replace('\\', "/"));
        }
    }
}

#[test]
fn generated_docs_are_up_to_date() {
    let root = root();
    let provider = Provider::default().with_resources(resources::all()).with_data_sources(data_sources::all());
    let pages = docs::pages(&provider, &root).unwrap_or_else(|e| panic!("{e}"));
    let mut on_disk = BTreeSet::new();
    existing(&root.join(DOCS_DIR), &root, &mut on_disk);
    let generated: BTreeSet<String> = pages.iter().map(|p| p.path.clone()).collect();

    if std::env::var_os("ORGSEC_UPDATE_DOCS").is_some() {
        for stale in on_disk.difference(&generated) {
            std::fs::remove_file(root.join(stale)).expect("remove a stale page");
        }
        for p in &pages {
            let path = root.join(&p.path);
            std::fs::create_dir_all(path.parent().expect("pages are in a folder")).expect("create the folder");
            std::fs::write(&path, &p.content).expect("write a page");
        }
        return;
    }

    let mut problems = Vec::new();
    for p in &pages {
        match std::fs::read_to_string(root.join(&p.path)) {
            Ok(text) if text == p.content => {}
            Ok(_) => problems.push(format!("{} is stale", p.path)),
            Err(_) => problems.push(format!("{} is missing", p.path)),
        }
    }
    for extra in on_disk.difference(&generated) {
        problems.push(format!("{extra} documents nothing the provider offers"));
    }
    assert!(
        problems.is_empty(),
        "{}\nRegenerate the docs with: cargo xtask docs (or ORGSEC_UPDATE_DOCS=1 cargo test -p terraform-provider-orgsec --test docs)",
        problems.join("\n")
    );
}

#[test]
fn every_attribute_is_described_and_every_block_well_formed() {
    let provider = Provider::default().with_resources(resources::all()).with_data_sources(data_sources::all());
    let mut blocks = vec![("provider".to_string(), provider.schema().block)];
    for t in provider.resource_types() {
        blocks.extend(provider.resource(t).map(|r| (t.to_string(), r.schema().block)));
    }
    for t in provider.data_source_types() {
        blocks.extend(provider.data_source(t).map(|d| (t.to_string(), d.schema().block)));
    }
    let mut undescribed = Vec::new();
    while let Some((name, block)) = blocks.pop() {
        if block.description.trim().is_empty() {
            undescribed.push(name.clone());
        }
        for a in &block.attributes {
            if a.description.trim().is_empty() {
                undescribed.push(format!("{name}.{}", a.name));
            }
        }
        for b in &block.blocks {
            // Terraform rejects a single nested block whose item limits differ.
            if b.nesting == Nesting::Single && b.min_items != b.max_items {
                undescribed.push(format!("{name}.{} (single block with min_items != max_items)", b.name));
            }
        }
        blocks.extend(block.blocks.iter().map(|b| (format!("{name}.{}", b.name), b.block.clone())));
    }
    assert!(undescribed.is_empty(), "without a description, or malformed: {undescribed:?}");
}
