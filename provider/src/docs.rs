//! Reference pages generated from the schemas, so the docs cannot drift from the code: one page for
//! the provider, one per resource and one per data source, each with its example from
//! `examples/` and, for resources, the import syntax.
//!
//! `ORGSEC_UPDATE_DOCS=1 cargo test -p terraform-provider-orgsec --test docs` writes them (also
//! `cargo xtask docs`); without the variable the same test fails when a page is stale.

use std::fmt::Write as _;
use std::path::Path;

use crate::framework::{Attribute, Block, Identity, Nesting, Provider, Schema};
use crate::tfvalue::{Type, Value};

/// Where the pages go, relative to the repository root.
pub const DOCS_DIR: &str = "docs/provider";

/// One generated page: its path relative to the repository root, and its Markdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub path: String,
    pub content: String,
}

/// Every page for `provider`, reading examples under `root/examples`. An error names each missing
/// example.
pub fn pages(provider: &Provider, root: &Path) -> Result<Vec<Page>, String> {
    let mut missing = Vec::new();
    let mut example = |rel: String| -> String {
        match std::fs::read_to_string(root.join(&rel)) {
            Ok(text) => text.trim_end().to_string(),
            Err(_) => {
                missing.push(rel);
                String::new()
            }
        }
    };
    let mut out = Vec::new();

    let provider_example = example("examples/provider/provider.tf".into());
    let mut index = String::new();
    let _ = writeln!(index, "# orgsec provider\n\n{}\n", provider.schema().block.description);
    let _ = writeln!(index, "## Example usage\n\n```hcl\n{provider_example}\n```\n");
    let _ = writeln!(index, "## Resources\n");
    for t in provider.resource_types() {
        let _ = writeln!(index, "- [`{t}`](resources/{}.md)", short(t));
    }
    let _ = writeln!(index, "\n## Data sources\n");
    for t in provider.data_source_types() {
        let _ = writeln!(index, "- [`{t}`](data-sources/{}.md)", short(t));
    }
    index.push('\n');
    write_reference(&mut index, &provider.schema().block, "Configuration");
    out.push(Page { path: format!("{DOCS_DIR}/index.md"), content: index });

    for t in provider.resource_types() {
        let Some(r) = provider.resource(t) else { continue };
        let usage = example(format!("examples/resources/{t}/resource.tf"));
        let import = example(format!("examples/resources/{t}/import.sh"));
        let mut page = header(t, "Resource", &r.schema(), &usage);
        let _ = writeln!(page, "## Import\n\n```shell\n{import}\n```");
        if let Some(identity) = r.identity() {
            // The id from the example's import command: its last word.
            let id = import.split_whitespace().last().unwrap_or("<id>");
            let _ = writeln!(
                page,
                "\nWith Terraform 1.12 or later, an `import` block can name the resource by its identity{}:\n\n\
                 ```hcl\nimport {{\n  to       = {t}.example\n  identity = {{ id = \"{id}\" }}\n}}\n```",
                match identity {
                    Identity::Aws(_) => " (`account_id` and `region` may be given too; they must be the provider's)",
                    Identity::Orchestrator(_) => "",
                }
            );
        }
        out.push(Page { path: format!("{DOCS_DIR}/resources/{}.md", short(t)), content: page });
    }
    for t in provider.data_source_types() {
        let Some(d) = provider.data_source(t) else { continue };
        let usage = example(format!("examples/data-sources/{t}/data-source.tf"));
        let page = header(t, "Data Source", &d.schema(), &usage);
        out.push(Page { path: format!("{DOCS_DIR}/data-sources/{}.md", short(t)), content: page });
    }
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(format!("examples are missing (every resource and data source needs one): {}", missing.join(", ")))
    }
}

/// `orgsec_standard` -> `standard`.
fn short(type_name: &str) -> &str {
    type_name.strip_prefix("orgsec_").unwrap_or(type_name)
}

fn header(type_name: &str, kind: &str, schema: &Schema, usage: &str) -> String {
    let mut page = String::new();
    let _ = writeln!(page, "# {type_name} ({kind})\n\n{}\n", schema.block.description);
    let _ = writeln!(page, "## Example usage\n\n```hcl\n{usage}\n```\n");
    write_reference(&mut page, &schema.block, "Schema");
    page
}

/// The argument and attribute lists of `block`, then each nested block's.
fn write_reference(page: &mut String, block: &Block, title: &str) {
    let _ = writeln!(page, "## {title}\n");
    write_block(page, block, "", "###");
    for b in &block.blocks {
        write_nested(page, b, "");
    }
}

/// A heading and which attributes go under it.
type Group = (&'static str, fn(&Attribute) -> bool);

fn write_block(page: &mut String, block: &Block, prefix: &str, heading: &str) {
    let groups: [Group; 3] = [
        ("Required", |a| a.required),
        ("Optional", |a| a.optional),
        ("Read-only", |a| a.computed && !a.optional && !a.required),
    ];
    for (label, keep) in groups {
        let attrs: Vec<&Attribute> = block.attributes.iter().filter(|a| keep(a)).collect();
        let blocks: Vec<_> = if label == "Optional" { block.blocks.iter().collect() } else { Vec::new() };
        if attrs.is_empty() && blocks.is_empty() {
            continue;
        }
        let _ = writeln!(page, "{heading} {label}\n");
        for a in attrs {
            let _ = writeln!(page, "- `{}` ({}) {}{}", a.name, type_name(&a.ty), a.description, notes(a));
        }
        for b in blocks {
            let anchor = format!("{prefix}{}", b.name);
            let _ = writeln!(
                page,
                "- `{}` (Block, at most one) {} See [below](#nested-block-{anchor}).",
                b.name, b.block.description
            );
        }
        page.push('\n');
    }
}

fn write_nested(page: &mut String, b: &crate::framework::NestedBlock, prefix: &str) {
    let anchor = format!("{prefix}{}", b.name);
    let many = match b.nesting {
        Nesting::Single => "",
        Nesting::List => " (list)",
        Nesting::Set => " (set)",
    };
    let _ = writeln!(page, "<a id=\"nested-block-{anchor}\"></a>\n### Nested block `{}`{many}\n", b.name);
    write_block(page, &b.block, &format!("{anchor}-"), "####");
    for inner in &b.block.blocks {
        write_nested(page, inner, &format!("{anchor}-"));
    }
}

/// What the plan does with an attribute, where it matters to the user.
fn notes(a: &Attribute) -> String {
    let mut n = Vec::new();
    if let Some(d) = &a.default {
        let shown = match d {
            Value::String(s) => format!("\"{s}\""),
            Value::Bool(b) => b.to_string(),
            Value::Number(x) => x.as_i64().map_or_else(|| x.to_f64().to_string(), |i| i.to_string()),
            other => format!("{other:?}"),
        };
        n.push(format!("Default: `{shown}`."));
    }
    if a.requires_replace && !a.description.contains("replaces") {
        n.push("Changing it replaces the resource.".to_string());
    }
    if a.sensitive {
        n.push("Sensitive.".to_string());
    }
    if n.is_empty() { String::new() } else { format!(" {}", n.join(" ")) }
}

fn type_name(t: &Type) -> String {
    match t {
        Type::Bool => "Boolean".into(),
        Type::Number => "Number".into(),
        Type::String => "String".into(),
        Type::Dynamic => "Dynamic".into(),
        Type::List(e) => format!("List of {}", type_name(e)),
        Type::Set(e) => format!("Set of {}", type_name(e)),
        Type::Map(e) => format!("Map of {}", type_name(e)),
        Type::Tuple(_) => "Tuple".into(),
        Type::Object { attributes, .. } => {
            let fields: Vec<String> = attributes.iter().map(|(k, v)| format!("{k}: {}", type_name(v))).collect();
            format!("Object {{ {} }}", fields.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_read_as_words() {
        assert_eq!(type_name(&Type::set(Type::String)), "Set of String");
        assert_eq!(type_name(&Type::map(Type::Number)), "Map of Number");
        let obj = Type::object([("id", Type::String), ("n", Type::Number)]);
        assert_eq!(type_name(&Type::list(obj)), "List of Object { id: String, n: Number }");
    }
}
