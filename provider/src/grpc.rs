//! The tfplugin6 `Provider` service. It only translates: protobuf in, plain Rust
//! ([`crate::framework`]) in the middle, protobuf out. RPCs the provider does not support yet
//! answer `Unimplemented`; nothing here may panic on any input.

use std::pin::Pin;
use std::sync::Arc;

use orgsec_proto::tfplugin6 as pb;
use tonic::{Request, Response, Status};

use crate::framework::diag::Step;
use crate::framework::identity::{self, Identity, Place, PlanInput};
use crate::framework::plan;
use crate::framework::schema::{Attribute, Block, NestedBlock, Nesting, Schema};
use crate::framework::{AttrPath, Ctx, DataSource, Diagnostics, Provider, Resource, Severity};
use crate::tfvalue::{self, JsonDecodeOptions, Type, Value};

/// The gRPC face of [`Provider`].
#[derive(Debug, Clone)]
pub struct ProviderService {
    core: Arc<Provider>,
}

impl ProviderService {
    pub fn new(core: Provider) -> ProviderService {
        ProviderService { core: Arc::new(core) }
    }

    pub fn core(&self) -> &Provider {
        &self.core
    }

    /// The managed resource a request names; an error diagnostic when the provider has none.
    fn resource(&self, type_name: &str) -> Result<&dyn Resource, Diagnostics> {
        self.core.resource(type_name).ok_or_else(|| {
            error("Unknown resource type", format!("The orgsec provider has no resource type \"{type_name}\"."))
        })
    }

    /// The data source a request names; an error diagnostic when the provider has none.
    fn data_source(&self, type_name: &str) -> Result<&dyn DataSource, Diagnostics> {
        self.core.data_source(type_name).ok_or_else(|| {
            error("Unknown data source", format!("The orgsec provider has no data source \"{type_name}\"."))
        })
    }

    /// The configured context for resource calls.
    fn ctx(&self) -> Result<Ctx, Diagnostics> {
        self.core.ctx()
    }
}

type Stream<T> = Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send + 'static>>;

/// An identity in protobuf form; `None` for a resource without identity, or a null identity.
type PbIdentity = Option<pb::ResourceIdentityData>;

/// A failed resource call: the state and identity to hand back to Terraform (so that a failure
/// loses nothing Terraform was tracking) and what went wrong.
type Failure = (Option<pb::DynamicValue>, PbIdentity, Diagnostics);

/// Where the provider acts, for identities.
fn place(ctx: &Ctx) -> Place<'_> {
    Place { account_id: &ctx.aws.account_id, region: &ctx.aws.region }
}

// ---------------------------------------------------------------------------------------------
// resource calls: decode, call the resource, check and encode what it returns

impl ProviderService {
    /// ReadResource: the resource's current state, null when it no longer exists, and its
    /// identity.
    async fn read(&self, r: &pb::read_resource::Request) -> Result<(pb::DynamicValue, PbIdentity), Failure> {
        let unchanged = |d| (r.current_state.clone(), r.current_identity.clone(), d);
        let res = self.resource(&r.type_name).map_err(unchanged)?;
        let ty = res.schema().value_type();
        let current = decode(r.current_state.as_ref(), &ty).map_err(unchanged)?;
        if current.is_null() {
            return Ok((encode(&Value::Null, &ty).map_err(unchanged)?, None));
        }
        let stored = match res.identity() {
            Some(kind) => decode_identity(r.current_identity.as_ref(), kind).map_err(unchanged)?,
            None => Value::Null,
        };
        let ctx = self.ctx().map_err(unchanged)?;
        let state = match res.read(&ctx, &current).await {
            Ok(Some(state)) => state,
            // Gone: Terraform drops it from state and plans to create it again.
            Ok(None) => Value::Null,
            Err(d) => return Err(unchanged(d)),
        };
        if let Some(d) = unknown_error(&state, "reading") {
            return Err(unchanged(d));
        }
        let identity = match res.identity() {
            Some(kind) => {
                let id = kind.for_read(&r.type_name, &stored, &state, place(&ctx)).map_err(unchanged)?;
                encode_identity(&id, kind).map_err(unchanged)?
            }
            None => None,
        };
        Ok((encode(&state, &ty).map_err(unchanged)?, identity))
    }

    /// ApplyResourceChange: delete, create or update, as the plan says; the new state and its
    /// identity.
    async fn apply(&self, r: &pb::apply_resource_change::Request) -> Result<(pb::DynamicValue, PbIdentity), Failure> {
        let res = self.resource(&r.type_name).map_err(|d| (r.prior_state.clone(), None, d))?;
        // What Terraform tracked before, handed back untouched when the change fails: the prior
        // state, and the planned identity when it is the prior object's (an update's or a
        // destroy's, known), not a new object's.
        let kept_identity = || {
            let kind = res.identity()?;
            let planned = decode_identity(r.planned_identity.as_ref(), kind).ok()?;
            if planned.is_null() || !planned.is_known_fully() { None } else { r.planned_identity.clone() }
        };
        let prior_state = |d| (r.prior_state.clone(), kept_identity(), d);
        let ty = res.schema().value_type();
        let prior = decode(r.prior_state.as_ref(), &ty).map_err(prior_state)?;
        let planned = decode(r.planned_state.as_ref(), &ty).map_err(prior_state)?;
        let ctx = self.ctx().map_err(prior_state)?;
        if planned.is_null() {
            res.delete(&ctx, &prior).await.map_err(prior_state)?;
            return Ok((encode(&Value::Null, &ty).map_err(prior_state)?, None));
        }
        let (result, doing) = if prior.is_null() {
            (res.create(&ctx, &planned).await, "creating")
        } else {
            (res.update(&ctx, &prior, &planned).await, "updating")
        };
        let state = result.map_err(prior_state)?;
        if state.is_null() {
            let detail = format!(
                "After {doing} {}, the provider returned no state, so Terraform cannot track it. This is a bug in the provider.",
                r.type_name
            );
            return Err(prior_state(error("Provider returned no state", detail)));
        }
        let identity_of = |state: &Value| match res.identity() {
            Some(kind) => encode_identity(&kind.for_apply(state, place(&ctx)), kind),
            None => Ok(None),
        };
        if let Some(d) = unknown_error(&state, doing) {
            // The change happened: keep what is known of it rather than lose the object.
            let known = plan::unknowns_to_null(&state);
            return Err(match encode(&known, &ty) {
                Ok(encoded) => (Some(encoded), identity_of(&known).ok().flatten(), d),
                Err(_) => prior_state(d),
            });
        }
        let identity = identity_of(&state).map_err(prior_state)?;
        Ok((encode(&state, &ty).map_err(prior_state)?, identity))
    }
}

/// What PlanResourceChange answers when it succeeds.
struct Planned {
    state: pb::DynamicValue,
    requires_replace: Vec<AttrPath>,
    identity: PbIdentity,
    warnings: Diagnostics,
}

impl ProviderService {
    /// PlanResourceChange: the planned state from the schema ([`plan::plan`]), checked against
    /// the outside world, and the planned identity.
    async fn plan(&self, r: &pb::plan_resource_change::Request) -> Result<Planned, Diagnostics> {
        let res = self.resource(&r.type_name)?;
        let schema = res.schema();
        let ty = schema.value_type();
        let prior = decode(r.prior_state.as_ref(), &ty)?;
        let proposed = decode(r.proposed_new_state.as_ref(), &ty)?;
        let config = decode(r.config.as_ref(), &ty)?;
        let prior_identity = match res.identity() {
            Some(kind) => decode_identity(r.prior_identity.as_ref(), kind)?,
            None => Value::Null,
        };
        let p = plan::plan(&schema.block, &prior, &proposed, &config);
        let state = encode(&p.planned, &ty)?;
        // Checks against the outside world need a configured provider; Terraform configures it
        // before planning, but a plan without one (as in tests) only skips them.
        let ctx = self.core.ctx().ok();
        let warnings = match &ctx {
            Some(ctx) if !p.planned.is_null() => {
                let d = res.check_plan(ctx, &p.planned).await;
                if d.has_errors() {
                    return Err(d);
                }
                d
            }
            _ => Diagnostics::default(),
        };
        let identity = match res.identity() {
            Some(kind) => {
                let input = PlanInput {
                    prior: &prior,
                    planned: &p.planned,
                    prior_identity: &prior_identity,
                    replace: !p.requires_replace.is_empty(),
                };
                encode_identity(&kind.for_plan(&r.type_name, &input, ctx.as_ref().map(place))?, kind)?
            }
            None => None,
        };
        Ok(Planned { state, requires_replace: p.requires_replace, identity, warnings })
    }

    /// ImportResourceState: the state [`Resource::import`] builds from the import id, or from the
    /// `id` of the identity an `import { identity = {...} }` block gives (after checking its
    /// account and region), with the object's identity.
    async fn import(
        &self,
        r: &pb::import_resource_state::Request,
    ) -> Result<(pb::DynamicValue, PbIdentity), Diagnostics> {
        let res = self.resource(&r.type_name)?;
        let ctx = self.ctx()?;
        let sent = r.identity.as_ref().and_then(|i| i.identity_data.as_ref());
        let id = match (sent.filter(|dv| !dv.msgpack.is_empty() || !dv.json.is_empty()), res.identity()) {
            (None, _) => r.id.clone(),
            (Some(_), None) => {
                return Err(error(
                    "Import by identity not supported",
                    format!("{} has no resource identity: import it by id instead.", r.type_name),
                ));
            }
            (Some(_), Some(kind)) => match decode_identity(r.identity.as_ref(), kind)? {
                Value::Null => r.id.clone(),
                requested => kind.import_id(&r.type_name, &requested, place(&ctx))?,
            },
        };
        let state = res.import(&ctx, &id).await?;
        if let Some(d) = unknown_error(&state, "importing") {
            return Err(d);
        }
        let identity = match res.identity() {
            Some(kind) => encode_identity(&kind.for_import(&state, &id, place(&ctx)), kind)?,
            None => None,
        };
        Ok((encode(&state, &res.schema().value_type())?, identity))
    }

    /// ReadDataSource: the configuration with every computed attribute filled in.
    async fn read_data(&self, r: &pb::read_data_source::Request) -> Result<pb::DynamicValue, Diagnostics> {
        let ds = self.data_source(&r.type_name)?;
        let schema = ds.schema();
        let ty = schema.value_type();
        let config = decode(r.config.as_ref(), &ty)?;
        if let Some(path) = plan::first_unknown(&config) {
            // Terraform defers reading until the configuration is known; say so if it did not.
            let mut d = Diagnostics::default();
            d.error_at(
                path,
                "Data source configuration not known yet",
                "This value is only known after apply, so the data source cannot be read yet.",
            );
            return Err(d);
        }
        let ctx = self.ctx()?;
        let state = ds.read(&ctx, &config).await?;
        if let Some(d) = unknown_error(&state, "reading the data source") {
            return Err(d);
        }
        if let Some(d) = config_changed(&schema.block, &config, &state) {
            return Err(d);
        }
        encode(&state, &ty)
    }
}

/// An error when a data source changed an attribute its configuration set (Terraform rejects such
/// a result as a provider bug; this names the attribute first).
fn config_changed(block: &Block, config: &Value, state: &Value) -> Option<Diagnostics> {
    let a = block.attributes.iter().find(|a| {
        let set = config.get_attr(a.name).unwrap_or(&Value::Null);
        !set.is_null() && !plan::equal(set, state.get_attr(a.name).unwrap_or(&Value::Null))
    })?;
    let mut d = Diagnostics::default();
    d.error_at(
        AttrPath::root(a.name),
        "Provider changed a configured value",
        format!("The data source returned a different {} than configured. This is a bug in the provider.", a.name),
    );
    Some(d)
}

/// UpgradeResourceState: the stored state (JSON, written with schema `version`) as a value of
/// the current schema. Attributes the schema no longer has are dropped; attributes it has gained
/// are null.
fn upgrade_state(schema: &Schema, version: i64, raw: Option<&pb::RawState>) -> Result<Value, Diagnostics> {
    let Some(raw) = raw.filter(|r| !r.json.is_empty()) else {
        if raw.is_some_and(|r| !r.flatmap.is_empty()) {
            return Err(error(
                "Unsupported state format",
                "This state was written by Terraform 0.11 or older (flatmap format), which the orgsec provider cannot read.",
            ));
        }
        return Ok(Value::Null);
    };
    if version > schema.version {
        return Err(error(
            "State from a newer provider",
            format!(
                "This state was written with schema version {version}, but this version of the orgsec provider only knows \
                 versions up to {}. Upgrade the provider.",
                schema.version
            ),
        ));
    }
    if version < schema.version {
        // Where a resource's schema version is bumped, its upgrade from each older version
        // goes here: decode with that version's type, then convert to the current one.
        return Err(error(
            "No state upgrade available",
            format!("The orgsec provider cannot upgrade state from schema version {version} to {}.", schema.version),
        ));
    }
    let options = JsonDecodeOptions { ignore_undefined_attributes: true };
    tfvalue::decode_json_with(&raw.json, &schema.value_type(), options)
        .map_err(|e| codec_error("Invalid stored state", "The provider could not read the stored state", &e))
}

/// An error naming the first unknown value in a state a resource returned, if there is one:
/// state must be wholly known, and an unknown there is a bug in the resource.
fn unknown_error(state: &Value, doing: &str) -> Option<Diagnostics> {
    let path = plan::first_unknown(state)?;
    let summary = "Provider returned an unknown value";
    let mut d = Diagnostics::default();
    if path.0.is_empty() {
        d.error(
            summary,
            format!("After {doing}, the provider returned an unknown state. This is a bug in the provider."),
        );
    } else {
        let detail = format!(
            "After {doing}, the provider left {path} unknown; every value in state must be known. This is a bug in the provider."
        );
        d.error_at(path, summary, detail);
    }
    Some(d)
}

/// The diagnostics of validating a configuration of `schema`: a decoding failure, or what
/// `validate` finds in the decoded value.
fn validated(
    schema: &Schema,
    config: Option<&pb::DynamicValue>,
    validate: impl FnOnce(&Value, &mut Diagnostics),
) -> Diagnostics {
    match decode(config, &schema.value_type()) {
        Ok(config) => {
            let mut d = Diagnostics::default();
            validate(&config, &mut d);
            d
        }
        Err(d) => d,
    }
}

/// A result as a response's value and diagnostics fields.
fn split(r: Result<pb::DynamicValue, Diagnostics>) -> (Option<pb::DynamicValue>, Diagnostics) {
    match r {
        Ok(v) => (Some(v), Diagnostics::default()),
        Err(d) => (None, d),
    }
}

// ---------------------------------------------------------------------------------------------
// framework -> protobuf

fn block_to_pb(b: &Block) -> pb::schema::Block {
    pb::schema::Block {
        version: 0,
        attributes: b.attributes.iter().map(attribute_to_pb).collect(),
        block_types: b.blocks.iter().map(nested_to_pb).collect(),
        description: b.description.to_string(),
        description_kind: pb::StringKind::Markdown as i32,
        deprecated: false,
    }
}

fn attribute_to_pb(a: &Attribute) -> pb::schema::Attribute {
    pb::schema::Attribute {
        name: a.name.to_string(),
        r#type: a.ty.to_json(),
        nested_type: None,
        description: a.description.to_string(),
        required: a.required,
        optional: a.optional,
        computed: a.computed,
        sensitive: a.sensitive,
        description_kind: pb::StringKind::Markdown as i32,
        deprecated: false,
        write_only: false,
    }
}

fn nested_to_pb(n: &NestedBlock) -> pb::schema::NestedBlock {
    use pb::schema::nested_block::NestingMode;
    pb::schema::NestedBlock {
        type_name: n.name.to_string(),
        block: Some(block_to_pb(&n.block)),
        nesting: match n.nesting {
            Nesting::Single => NestingMode::Single,
            Nesting::List => NestingMode::List,
            Nesting::Set => NestingMode::Set,
        } as i32,
        min_items: n.min_items,
        max_items: n.max_items,
    }
}

fn schema_to_pb(s: &Schema) -> pb::Schema {
    let mut block = block_to_pb(&s.block);
    block.version = s.version;
    pb::Schema { version: s.version, block: Some(block) }
}

/// Diagnostics in protobuf form.
pub fn diagnostics_to_pb(d: &Diagnostics) -> Vec<pb::Diagnostic> {
    d.0.iter()
        .map(|x| pb::Diagnostic {
            severity: match x.severity {
                Severity::Error => pb::diagnostic::Severity::Error,
                Severity::Warning => pb::diagnostic::Severity::Warning,
            } as i32,
            summary: x.summary.clone(),
            detail: x.detail.clone(),
            attribute: x.path.as_ref().map(attr_path_to_pb),
        })
        .collect()
}

/// Decodes a DynamicValue of type `ty`; a decoding failure is an error diagnostic on the attribute
/// where decoding stopped. An absent or empty value is null.
pub fn decode(dv: Option<&pb::DynamicValue>, ty: &Type) -> Result<Value, Diagnostics> {
    let Some(dv) = dv else {
        return Ok(Value::Null);
    };
    let decoded = if !dv.msgpack.is_empty() {
        tfvalue::decode_msgpack(&dv.msgpack, ty)
    } else if !dv.json.is_empty() {
        tfvalue::decode_json(&dv.json, ty)
    } else {
        return Ok(Value::Null);
    };
    decoded.map_err(|e| {
        codec_error("Invalid value from Terraform", "The provider could not decode a value Terraform sent", &e)
    })
}

/// Encodes a value of type `ty` as msgpack; a value that does not fit the type is a provider bug,
/// reported as an error diagnostic.
pub fn encode(v: &Value, ty: &Type) -> Result<pb::DynamicValue, Diagnostics> {
    match tfvalue::encode_msgpack(v, ty) {
        Ok(msgpack) => Ok(pb::DynamicValue { msgpack, json: Vec::new() }),
        Err(e) => Err(codec_error(
            "Provider produced an invalid value",
            "The provider built a value that does not match its own schema. This is a bug in the provider",
            &e,
        )),
    }
}

/// Decodes the identity Terraform sent for a resource whose identity is `kind`; absent is null.
fn decode_identity(data: Option<&pb::ResourceIdentityData>, kind: Identity) -> Result<Value, Diagnostics> {
    let Some(dv) = data.and_then(|d| d.identity_data.as_ref()) else {
        return Ok(Value::Null);
    };
    let decoded = if !dv.msgpack.is_empty() {
        tfvalue::decode_msgpack(&dv.msgpack, &kind.value_type())
    } else if !dv.json.is_empty() {
        tfvalue::decode_json(&dv.json, &kind.value_type())
    } else {
        return Ok(Value::Null);
    };
    decoded.map_err(|e| {
        codec_error(
            "Invalid identity from Terraform",
            "The provider could not decode a resource identity Terraform sent",
            &e,
        )
    })
}

/// An identity in protobuf form: `None` when it is null.
fn encode_identity(v: &Value, kind: Identity) -> Result<PbIdentity, Diagnostics> {
    if v.is_null() {
        return Ok(None);
    }
    Ok(Some(pb::ResourceIdentityData { identity_data: Some(encode(v, &kind.value_type())?) }))
}

/// An identity schema in protobuf form.
fn identity_schema_to_pb(s: &identity::IdentitySchema) -> pb::ResourceIdentitySchema {
    pb::ResourceIdentitySchema {
        version: s.version,
        identity_attributes: s
            .attributes
            .iter()
            .map(|a| pb::resource_identity_schema::IdentityAttribute {
                name: a.name.to_string(),
                r#type: a.ty.to_json(),
                required_for_import: a.required_for_import,
                optional_for_import: a.optional_for_import,
                description: a.description.to_string(),
            })
            .collect(),
    }
}

/// An error diagnostic for a codec failure, on the attribute where it happened.
fn codec_error(summary: &str, detail: &str, e: &tfvalue::CodecError) -> Diagnostics {
    let mut steps = Vec::new();
    for s in e.path() {
        steps.push(match s {
            tfvalue::PathStep::Attr(a) => Step::Attr(a.clone()),
            tfvalue::PathStep::Key(k) => Step::Key(k.clone()),
            tfvalue::PathStep::Index(i) => Step::Index(i64::try_from(*i).unwrap_or(i64::MAX)),
            // Terraform addresses set elements by value; the set itself is as close as a path gets.
            tfvalue::PathStep::SetElement(_) => break,
        });
    }
    let mut d = Diagnostics::default();
    let detail = format!("{detail}: {e}");
    if steps.is_empty() {
        d.error(summary, detail);
    } else {
        d.error_at(AttrPath(steps), summary, detail);
    }
    d
}

/// An attribute path in protobuf form.
fn attr_path_to_pb(p: &AttrPath) -> pb::AttributePath {
    use pb::attribute_path::step::Selector;
    pb::AttributePath {
        steps: p
            .0
            .iter()
            .map(|s| pb::attribute_path::Step {
                selector: Some(match s {
                    Step::Attr(a) => Selector::AttributeName(a.clone()),
                    Step::Key(k) => Selector::ElementKeyString(k.clone()),
                    Step::Index(i) => Selector::ElementKeyInt(*i),
                }),
            })
            .collect(),
    }
}

/// One error diagnostic.
fn error(summary: &str, detail: impl Into<String>) -> Diagnostics {
    let mut d = Diagnostics::default();
    d.error(summary, detail);
    d
}

fn unimplemented<T>(what: &str) -> Result<Response<T>, Status> {
    Err(Status::unimplemented(format!("terraform-provider-orgsec does not support {what}")))
}

#[tonic::async_trait]
impl pb::provider_server::Provider for ProviderService {
    async fn get_metadata(
        &self,
        _request: Request<pb::get_metadata::Request>,
    ) -> Result<Response<pb::get_metadata::Response>, Status> {
        Ok(Response::new(pb::get_metadata::Response {
            server_capabilities: Some(server_capabilities()),
            resources: self
                .core
                .resource_types()
                .into_iter()
                .map(|t| pb::get_metadata::ResourceMetadata { type_name: t.to_string() })
                .collect(),
            data_sources: self
                .core
                .data_source_types()
                .into_iter()
                .map(|t| pb::get_metadata::DataSourceMetadata { type_name: t.to_string() })
                .collect(),
            ..Default::default()
        }))
    }

    async fn get_provider_schema(
        &self,
        _request: Request<pb::get_provider_schema::Request>,
    ) -> Result<Response<pb::get_provider_schema::Response>, Status> {
        Ok(Response::new(pb::get_provider_schema::Response {
            provider: Some(schema_to_pb(&self.core.schema())),
            resource_schemas: self
                .core
                .resource_types()
                .into_iter()
                .filter_map(|t| self.core.resource(t).map(|r| (t.to_string(), schema_to_pb(&r.schema()))))
                .collect(),
            data_source_schemas: self
                .core
                .data_source_types()
                .into_iter()
                .filter_map(|t| self.core.data_source(t).map(|d| (t.to_string(), schema_to_pb(&d.schema()))))
                .collect(),
            server_capabilities: Some(server_capabilities()),
            ..Default::default()
        }))
    }

    async fn validate_provider_config(
        &self,
        request: Request<pb::validate_provider_config::Request>,
    ) -> Result<Response<pb::validate_provider_config::Response>, Status> {
        let ty = self.core.schema().value_type();
        let diagnostics = match decode(request.get_ref().config.as_ref(), &ty) {
            Ok(v) => self.core.validate_config(&v),
            Err(d) => d,
        };
        Ok(Response::new(pb::validate_provider_config::Response { diagnostics: diagnostics_to_pb(&diagnostics) }))
    }

    async fn configure_provider(
        &self,
        request: Request<pb::configure_provider::Request>,
    ) -> Result<Response<pb::configure_provider::Response>, Status> {
        let ty = self.core.schema().value_type();
        let diagnostics = match decode(request.get_ref().config.as_ref(), &ty) {
            Ok(v) => self.core.configure(&v).await,
            Err(d) => d,
        };
        Ok(Response::new(pb::configure_provider::Response { diagnostics: diagnostics_to_pb(&diagnostics) }))
    }

    async fn get_resource_identity_schemas(
        &self,
        _request: Request<pb::get_resource_identity_schemas::Request>,
    ) -> Result<Response<pb::get_resource_identity_schemas::Response>, Status> {
        let identity_schemas = self
            .core
            .resource_types()
            .into_iter()
            .filter_map(|t| {
                let kind = self.core.resource(t)?.identity()?;
                Some((t.to_string(), identity_schema_to_pb(&kind.schema())))
            })
            .collect();
        Ok(Response::new(pb::get_resource_identity_schemas::Response { identity_schemas, diagnostics: Vec::new() }))
    }

    async fn stop_provider(
        &self,
        _request: Request<pb::stop_provider::Request>,
    ) -> Result<Response<pb::stop_provider::Response>, Status> {
        Ok(Response::new(pb::stop_provider::Response { error: String::new() }))
    }

    async fn validate_resource_config(
        &self,
        request: Request<pb::validate_resource_config::Request>,
    ) -> Result<Response<pb::validate_resource_config::Response>, Status> {
        let r = request.get_ref();
        let diagnostics = match self.resource(&r.type_name) {
            Ok(res) => validated(&res.schema(), r.config.as_ref(), |c, d| res.validate(c, d)),
            Err(d) => d,
        };
        Ok(Response::new(pb::validate_resource_config::Response { diagnostics: diagnostics_to_pb(&diagnostics) }))
    }

    async fn upgrade_resource_state(
        &self,
        request: Request<pb::upgrade_resource_state::Request>,
    ) -> Result<Response<pb::upgrade_resource_state::Response>, Status> {
        let r = request.get_ref();
        let upgraded = self.resource(&r.type_name).and_then(|res| {
            let schema = res.schema();
            let ty = schema.value_type();
            let state = upgrade_state(&schema, r.version, r.raw_state.as_ref())?;
            encode(&state, &ty)
        });
        let (upgraded_state, diagnostics) = split(upgraded);
        Ok(Response::new(pb::upgrade_resource_state::Response {
            upgraded_state,
            diagnostics: diagnostics_to_pb(&diagnostics),
        }))
    }

    async fn upgrade_resource_identity(
        &self,
        request: Request<pb::upgrade_resource_identity::Request>,
    ) -> Result<Response<pb::upgrade_resource_identity::Response>, Status> {
        let r = request.get_ref();
        let upgraded = self.resource(&r.type_name).and_then(|res| {
            let Some(kind) = res.identity() else {
                return Err(error(
                    "Resource type has no identity",
                    format!("The orgsec provider keeps no identity for {}, so there is none to upgrade.", r.type_name),
                ));
            };
            let json = r.raw_identity.as_ref().map_or(&[][..], |raw| raw.json.as_slice());
            encode_identity(&kind.upgrade(&r.type_name, r.version, json)?, kind)
        });
        let (upgraded_identity, diagnostics) = match upgraded {
            Ok(identity) => (identity, Diagnostics::default()),
            Err(d) => (None, d),
        };
        Ok(Response::new(pb::upgrade_resource_identity::Response {
            upgraded_identity,
            diagnostics: diagnostics_to_pb(&diagnostics),
        }))
    }

    async fn read_resource(
        &self,
        request: Request<pb::read_resource::Request>,
    ) -> Result<Response<pb::read_resource::Response>, Status> {
        let r = request.into_inner();
        let (new_state, new_identity, diagnostics) = match self.read(&r).await {
            Ok((state, identity)) => (Some(state), identity, Diagnostics::default()),
            Err(failure) => failure,
        };
        Ok(Response::new(pb::read_resource::Response {
            new_state,
            diagnostics: diagnostics_to_pb(&diagnostics),
            private: r.private,
            new_identity,
            ..Default::default()
        }))
    }

    async fn plan_resource_change(
        &self,
        request: Request<pb::plan_resource_change::Request>,
    ) -> Result<Response<pb::plan_resource_change::Response>, Status> {
        let r = request.into_inner();
        Ok(Response::new(match self.plan(&r).await {
            Ok(p) => pb::plan_resource_change::Response {
                planned_state: Some(p.state),
                requires_replace: p.requires_replace.iter().map(attr_path_to_pb).collect(),
                planned_private: r.prior_private,
                diagnostics: diagnostics_to_pb(&p.warnings),
                planned_identity: p.identity,
                ..Default::default()
            },
            Err(d) => pb::plan_resource_change::Response { diagnostics: diagnostics_to_pb(&d), ..Default::default() },
        }))
    }

    async fn apply_resource_change(
        &self,
        request: Request<pb::apply_resource_change::Request>,
    ) -> Result<Response<pb::apply_resource_change::Response>, Status> {
        let r = request.into_inner();
        let (new_state, new_identity, diagnostics) = match self.apply(&r).await {
            Ok((state, identity)) => (Some(state), identity, Diagnostics::default()),
            Err(failure) => failure,
        };
        Ok(Response::new(pb::apply_resource_change::Response {
            new_state,
            private: r.planned_private,
            diagnostics: diagnostics_to_pb(&diagnostics),
            new_identity,
            ..Default::default()
        }))
    }

    async fn import_resource_state(
        &self,
        request: Request<pb::import_resource_state::Request>,
    ) -> Result<Response<pb::import_resource_state::Response>, Status> {
        let r = request.get_ref();
        Ok(Response::new(match self.import(r).await {
            Ok((state, identity)) => pb::import_resource_state::Response {
                imported_resources: vec![pb::import_resource_state::ImportedResource {
                    type_name: r.type_name.clone(),
                    state: Some(state),
                    private: Vec::new(),
                    identity,
                }],
                ..Default::default()
            },
            Err(d) => pb::import_resource_state::Response { diagnostics: diagnostics_to_pb(&d), ..Default::default() },
        }))
    }

    async fn validate_data_resource_config(
        &self,
        request: Request<pb::validate_data_resource_config::Request>,
    ) -> Result<Response<pb::validate_data_resource_config::Response>, Status> {
        let r = request.get_ref();
        let diagnostics = match self.data_source(&r.type_name) {
            Ok(ds) => validated(&ds.schema(), r.config.as_ref(), |c, d| ds.validate(c, d)),
            Err(d) => d,
        };
        Ok(Response::new(pb::validate_data_resource_config::Response { diagnostics: diagnostics_to_pb(&diagnostics) }))
    }

    async fn read_data_source(
        &self,
        request: Request<pb::read_data_source::Request>,
    ) -> Result<Response<pb::read_data_source::Response>, Status> {
        let (state, diagnostics) = split(self.read_data(request.get_ref()).await);
        Ok(Response::new(pb::read_data_source::Response {
            state,
            diagnostics: diagnostics_to_pb(&diagnostics),
            deferred: None,
        }))
    }

    // Everything below is not offered by the schema, so Terraform does not call it.

    async fn move_resource_state(
        &self,
        _r: Request<pb::move_resource_state::Request>,
    ) -> Result<Response<pb::move_resource_state::Response>, Status> {
        unimplemented("moving resource state")
    }
    async fn generate_resource_config(
        &self,
        _r: Request<pb::generate_resource_config::Request>,
    ) -> Result<Response<pb::generate_resource_config::Response>, Status> {
        unimplemented("generating resource configuration")
    }
    async fn validate_ephemeral_resource_config(
        &self,
        _r: Request<pb::validate_ephemeral_resource_config::Request>,
    ) -> Result<Response<pb::validate_ephemeral_resource_config::Response>, Status> {
        unimplemented("ephemeral resources")
    }
    async fn open_ephemeral_resource(
        &self,
        _r: Request<pb::open_ephemeral_resource::Request>,
    ) -> Result<Response<pb::open_ephemeral_resource::Response>, Status> {
        unimplemented("ephemeral resources")
    }
    async fn renew_ephemeral_resource(
        &self,
        _r: Request<pb::renew_ephemeral_resource::Request>,
    ) -> Result<Response<pb::renew_ephemeral_resource::Response>, Status> {
        unimplemented("ephemeral resources")
    }
    async fn close_ephemeral_resource(
        &self,
        _r: Request<pb::close_ephemeral_resource::Request>,
    ) -> Result<Response<pb::close_ephemeral_resource::Response>, Status> {
        unimplemented("ephemeral resources")
    }

    type ListResourceStream = Stream<pb::list_resource::Event>;
    async fn list_resource(
        &self,
        _r: Request<pb::list_resource::Request>,
    ) -> Result<Response<Self::ListResourceStream>, Status> {
        unimplemented("list resources")
    }
    async fn validate_list_resource_config(
        &self,
        _r: Request<pb::validate_list_resource_config::Request>,
    ) -> Result<Response<pb::validate_list_resource_config::Response>, Status> {
        unimplemented("list resources")
    }
    async fn get_functions(
        &self,
        _r: Request<pb::get_functions::Request>,
    ) -> Result<Response<pb::get_functions::Response>, Status> {
        Ok(Response::new(pb::get_functions::Response::default()))
    }
    async fn call_function(
        &self,
        _r: Request<pb::call_function::Request>,
    ) -> Result<Response<pb::call_function::Response>, Status> {
        unimplemented("functions")
    }
    async fn validate_state_store_config(
        &self,
        _r: Request<pb::validate_state_store::Request>,
    ) -> Result<Response<pb::validate_state_store::Response>, Status> {
        unimplemented("state stores")
    }
    async fn configure_state_store(
        &self,
        _r: Request<pb::configure_state_store::Request>,
    ) -> Result<Response<pb::configure_state_store::Response>, Status> {
        unimplemented("state stores")
    }

    type ReadStateBytesStream = Stream<pb::read_state_bytes::Response>;
    async fn read_state_bytes(
        &self,
        _r: Request<pb::read_state_bytes::Request>,
    ) -> Result<Response<Self::ReadStateBytesStream>, Status> {
        unimplemented("state stores")
    }
    async fn write_state_bytes(
        &self,
        _r: Request<tonic::Streaming<pb::write_state_bytes::RequestChunk>>,
    ) -> Result<Response<pb::write_state_bytes::Response>, Status> {
        unimplemented("state stores")
    }
    async fn lock_state(
        &self,
        _r: Request<pb::lock_state::Request>,
    ) -> Result<Response<pb::lock_state::Response>, Status> {
        unimplemented("state stores")
    }
    async fn unlock_state(
        &self,
        _r: Request<pb::unlock_state::Request>,
    ) -> Result<Response<pb::unlock_state::Response>, Status> {
        unimplemented("state stores")
    }
    async fn get_states(
        &self,
        _r: Request<pb::get_states::Request>,
    ) -> Result<Response<pb::get_states::Response>, Status> {
        unimplemented("state stores")
    }
    async fn delete_state(
        &self,
        _r: Request<pb::delete_state::Request>,
    ) -> Result<Response<pb::delete_state::Response>, Status> {
        unimplemented("state stores")
    }
    async fn plan_action(
        &self,
        _r: Request<pb::plan_action::Request>,
    ) -> Result<Response<pb::plan_action::Response>, Status> {
        unimplemented("actions")
    }

    type InvokeActionStream = Stream<pb::invoke_action::Event>;
    async fn invoke_action(
        &self,
        _r: Request<pb::invoke_action::Request>,
    ) -> Result<Response<Self::InvokeActionStream>, Status> {
        unimplemented("actions")
    }
    async fn validate_action_config(
        &self,
        _r: Request<pb::validate_action_config::Request>,
    ) -> Result<Response<pb::validate_action_config::Response>, Status> {
        unimplemented("actions")
    }
}

fn server_capabilities() -> pb::ServerCapabilities {
    pb::ServerCapabilities {
        plan_destroy: true,
        get_provider_schema_optional: false,
        move_resource_state: false,
        generate_resource_config: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orgsec_proto::tfplugin6::provider_server::Provider as _;
    use proptest::prelude::*;

    fn service() -> ProviderService {
        ProviderService::new(Provider::new(Box::new(|_| None)))
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
    }

    #[test]
    fn schema_round_trips_through_protobuf_with_types_as_json() {
        let s = run(service().get_provider_schema(Request::new(pb::get_provider_schema::Request {})))
            .expect("schema")
            .into_inner();
        let block = s.provider.and_then(|p| p.block).expect("provider block");
        let region = block.attributes.iter().find(|a| a.name == "region").expect("region");
        assert_eq!(region.r#type, b"\"string\"");
        assert!(region.optional && !region.required && !region.description.is_empty());
        let orch = block.block_types.iter().find(|b| b.type_name == "orchestrator").expect("orchestrator");
        let token = orch.block.as_ref().and_then(|b| b.attributes.iter().find(|a| a.name == "token")).expect("token");
        assert!(token.sensitive);
    }

    #[test]
    fn invalid_configuration_comes_back_as_diagnostics_with_paths() {
        let svc = service();
        let ty = svc.core().schema().value_type();
        let mut attrs = std::collections::BTreeMap::new();
        for name in ["region", "profile", "endpoint_url", "assume_role", "orchestrator"] {
            attrs.insert(name.to_string(), Value::Null);
        }
        attrs.insert("region".into(), Value::String("nowhere".into()));
        let msgpack = tfvalue::encode_msgpack(&Value::Object(attrs), &ty).expect("encode");
        let resp = run(svc.validate_provider_config(Request::new(pb::validate_provider_config::Request {
            config: Some(pb::DynamicValue { msgpack, json: vec![] }),
        })))
        .expect("validate")
        .into_inner();
        assert_eq!(resp.diagnostics.len(), 1);
        let step = &resp.diagnostics[0].attribute.as_ref().expect("path").steps[0];
        assert_eq!(step.selector, Some(pb::attribute_path::step::Selector::AttributeName("region".into())));
    }

    proptest! {
        /// Whatever bytes arrive as the provider configuration, the answer is diagnostics, not a
        /// panic (a panic would take terraform down with the provider). ConfigureProvider is sent
        /// the bytes only when they do not make a valid configuration: a valid one would connect to
        /// AWS, which the acceptance suite covers against the emulator.
        #[test]
        fn arbitrary_configuration_bytes_never_panic(msgpack in proptest::collection::vec(any::<u8>(), 0..256),
                                                     json in proptest::collection::vec(any::<u8>(), 0..64)) {
            let svc = service();
            let req = pb::DynamicValue { msgpack, json };
            let v = run(svc.validate_provider_config(Request::new(pb::validate_provider_config::Request { config: Some(req.clone()) })));
            prop_assert!(v.is_ok());
            let invalid = v.map(|r| !r.into_inner().diagnostics.is_empty()).unwrap_or(false);
            if invalid {
                let c = run(svc.configure_provider(Request::new(pb::configure_provider::Request {
                    terraform_version: "1.15.5".into(), config: Some(req), client_capabilities: None })));
                prop_assert!(c.is_ok_and(|r| !r.into_inner().diagnostics.is_empty()));
            }
        }
    }
}

/// The resource RPCs, end to end through the service, with an in-memory resource.
#[cfg(test)]
mod resource_tests {
    use std::collections::{BTreeMap, HashMap};
    use std::sync::{Arc, Mutex};

    use orgsec_proto::tfplugin6::provider_server::Provider as _;
    use proptest::prelude::*;

    use super::*;
    use crate::framework::{BoxFuture, Ctx, Resource};

    const TYPE: &str = "orgsec_fake";

    /// Objects of the fake resource, by id.
    type Store = Arc<Mutex<HashMap<String, Value>>>;

    /// `orgsec_fake`: objects live in a map. `id` and `revision` are computed (the revision
    /// counts updates), `level` defaults to "standard", and a name change replaces the object.
    /// A name of "leave-unknown" makes create forget to fill `revision`, as a buggy resource would.
    struct Fake(Store);

    fn objects(store: &Store) -> std::sync::MutexGuard<'_, HashMap<String, Value>> {
        store.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn fake_error(summary: &str) -> Diagnostics {
        let mut d = Diagnostics::default();
        d.error(summary, "");
        d
    }

    fn with(v: &Value, pairs: &[(&str, Value)]) -> Value {
        let mut m = v.as_map().cloned().unwrap_or_default();
        for (k, x) in pairs {
            m.insert(k.to_string(), x.clone());
        }
        Value::Object(m)
    }

    fn known_or(v: Option<&Value>, default: Value) -> Value {
        v.filter(|x| !x.is_null() && !x.is_unknown()).cloned().unwrap_or(default)
    }

    impl Resource for Fake {
        fn type_name(&self) -> &'static str {
            TYPE
        }

        fn identity(&self) -> Option<Identity> {
            Some(Identity::Aws("id"))
        }

        fn schema(&self) -> Schema {
            Schema {
                version: 0,
                block: Block {
                    description: "A resource that lives in memory.",
                    attributes: vec![
                        Attribute::computed("id", Type::String, "Id.").use_state_for_unknown(),
                        Attribute::required("name", Type::String, "Name; changing it replaces the object.")
                            .requires_replace(),
                        Attribute::optional("note", Type::String, "Free text."),
                        Attribute::optional_computed("level", Type::String, "Defaults to `standard`."),
                        Attribute::computed("revision", Type::Number, "Counts updates."),
                    ],
                    blocks: vec![],
                },
            }
        }

        fn validate(&self, config: &Value, diags: &mut Diagnostics) {
            if config.get_attr("name").and_then(Value::as_str) == Some("") {
                diags.error_at(AttrPath::root("name"), "Empty name", "A name cannot be empty.");
            }
        }

        fn create<'a>(&'a self, _ctx: &'a Ctx, planned: &'a Value) -> BoxFuture<'a, Result<Value, Diagnostics>> {
            Box::pin(async move {
                let mut objects = objects(&self.0);
                let id = format!("fake-{}", objects.len() + 1);
                let buggy = planned.get_attr("name").and_then(Value::as_str) == Some("leave-unknown");
                let state = with(
                    planned,
                    &[
                        ("id", id.as_str().into()),
                        ("level", known_or(planned.get_attr("level"), "standard".into())),
                        ("revision", if buggy { Value::Unknown } else { 1.into() }),
                    ],
                );
                objects.insert(id, state.clone());
                Ok(state)
            })
        }

        fn read<'a>(&'a self, _ctx: &'a Ctx, state: &'a Value) -> BoxFuture<'a, Result<Option<Value>, Diagnostics>> {
            Box::pin(async move {
                let id = state.get_attr("id").and_then(Value::as_str).unwrap_or_default();
                Ok(objects(&self.0).get(id).cloned())
            })
        }

        fn update<'a>(
            &'a self,
            _ctx: &'a Ctx,
            prior: &'a Value,
            planned: &'a Value,
        ) -> BoxFuture<'a, Result<Value, Diagnostics>> {
            Box::pin(async move {
                let id = prior.get_attr("id").and_then(Value::as_str).unwrap_or_default().to_string();
                let mut objects = objects(&self.0);
                let Some(current) = objects.get(&id) else {
                    return Err(fake_error("updating a fake that is gone"));
                };
                let revision = current.get_attr("revision").and_then(Value::as_i64).unwrap_or(0) + 1;
                let level = known_or(planned.get_attr("level"), known_or(current.get_attr("level"), Value::Null));
                let state =
                    with(planned, &[("id", id.as_str().into()), ("level", level), ("revision", revision.into())]);
                objects.insert(id, state.clone());
                Ok(state)
            })
        }

        fn delete<'a>(&'a self, _ctx: &'a Ctx, state: &'a Value) -> BoxFuture<'a, Result<(), Diagnostics>> {
            Box::pin(async move {
                let id = state.get_attr("id").and_then(Value::as_str).unwrap_or_default();
                objects(&self.0).remove(id);
                Ok(())
            })
        }

        fn import<'a>(&'a self, _ctx: &'a Ctx, id: &'a str) -> BoxFuture<'a, Result<Value, Diagnostics>> {
            Box::pin(async move {
                let mut attrs: BTreeMap<String, Value> =
                    self.schema().block.attributes.iter().map(|a| (a.name.to_string(), Value::Null)).collect();
                attrs.insert("id".into(), id.into());
                Ok(Value::Object(attrs))
            })
        }
    }

    fn fake_service(store: &Store) -> ProviderService {
        ProviderService::new(Provider::new(Box::new(|_| None)).with_resources(vec![Box::new(Fake(store.clone()))]))
    }

    /// The account the provider acts in for [`configured_in`].
    const ACCOUNT: &str = "666666666666";
    const REGION: &str = "us-east-1";

    /// The service with the fake resource, configured as if for `account` without connecting
    /// anywhere (the fake needs no AWS).
    fn configured_in(store: &Store, account: &str) -> ProviderService {
        let sdk = aws_config::SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build();
        let p = Provider::new(Box::new(|_| None)).with_resources(vec![Box::new(Fake(store.clone()))]);
        ProviderService::new(p.configured_with(crate::aws::Aws::from_parts(sdk, account, REGION), None))
    }

    fn ty() -> Type {
        Fake(Store::default()).schema().value_type()
    }

    fn dv(v: &Value) -> Option<pb::DynamicValue> {
        Some(pb::DynamicValue { msgpack: tfvalue::encode_msgpack(v, &ty()).expect("encode"), json: vec![] })
    }

    fn value(d: Option<pb::DynamicValue>) -> Value {
        decode(d.as_ref(), &ty()).expect("decode")
    }

    fn object(pairs: &[(&str, Value)]) -> Value {
        let nulls = Value::Object(
            ["id", "name", "note", "level", "revision"].iter().map(|k| (k.to_string(), Value::Null)).collect(),
        );
        with(&nulls, pairs)
    }

    fn summaries(d: &[pb::Diagnostic]) -> Vec<String> {
        d.iter().map(|x| x.summary.clone()).collect()
    }

    fn path_of(d: &pb::Diagnostic) -> Vec<String> {
        use pb::attribute_path::step::Selector;
        d.attribute
            .iter()
            .flat_map(|p| &p.steps)
            .map(|s| match &s.selector {
                Some(Selector::AttributeName(a)) => a.clone(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    /// What Terraform proposes for this flat schema: the configuration, with the prior value of
    /// every computed attribute the configuration leaves null.
    fn propose(prior: &Value, config: &Value) -> Value {
        let computed = ["id", "level", "revision"];
        let pairs: Vec<(&str, Value)> = computed
            .iter()
            .filter(|k| config.get_attr(k).is_none_or(Value::is_null))
            .map(|k| (*k, prior.get_attr(k).cloned().unwrap_or(Value::Null)))
            .collect();
        with(config, &pairs)
    }

    async fn plan(svc: &ProviderService, prior: &Value, config: &Value) -> (Value, Vec<Vec<String>>) {
        let proposed = if config.is_null() { Value::Null } else { propose(prior, config) };
        let resp = svc
            .plan_resource_change(Request::new(pb::plan_resource_change::Request {
                type_name: TYPE.into(),
                prior_state: dv(prior),
                proposed_new_state: dv(&proposed),
                config: dv(config),
                prior_private: b"private".to_vec(),
                ..Default::default()
            }))
            .await
            .expect("plan")
            .into_inner();
        assert!(resp.diagnostics.is_empty(), "{:?}", resp.diagnostics);
        assert_eq!(resp.planned_private, b"private");
        let replace = resp
            .requires_replace
            .iter()
            .map(|p| path_of(&pb::Diagnostic { attribute: Some(p.clone()), ..Default::default() }))
            .collect();
        (value(resp.planned_state), replace)
    }

    async fn apply(svc: &ProviderService, prior: &Value, planned: &Value) -> (Value, Vec<pb::Diagnostic>) {
        let resp = svc
            .apply_resource_change(Request::new(pb::apply_resource_change::Request {
                type_name: TYPE.into(),
                prior_state: dv(prior),
                planned_state: dv(planned),
                config: dv(planned),
                planned_private: b"private".to_vec(),
                ..Default::default()
            }))
            .await
            .expect("apply")
            .into_inner();
        assert_eq!(resp.private, b"private");
        (value(resp.new_state), resp.diagnostics)
    }

    async fn read(svc: &ProviderService, state: &Value) -> (Value, Vec<pb::Diagnostic>) {
        let resp = svc
            .read_resource(Request::new(pb::read_resource::Request {
                type_name: TYPE.into(),
                current_state: dv(state),
                private: b"kept".to_vec(),
                ..Default::default()
            }))
            .await
            .expect("read")
            .into_inner();
        assert_eq!(resp.private, b"kept");
        (value(resp.new_state), resp.diagnostics)
    }

    // -----------------------------------------------------------------------------------------
    // Without a configured provider: everything that needs no AWS context.

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
    }

    #[test]
    fn resources_are_listed_with_their_schemas() {
        let svc = fake_service(&Store::default());
        let s = run(svc.get_provider_schema(Request::new(pb::get_provider_schema::Request {}))).expect("schema");
        let schema = s.get_ref().resource_schemas.get(TYPE).and_then(|s| s.block.as_ref()).expect("fake schema");
        let id = schema.attributes.iter().find(|a| a.name == "id").expect("id");
        assert!(id.computed && !id.optional);
        let m = run(svc.get_metadata(Request::new(pb::get_metadata::Request {}))).expect("metadata");
        assert_eq!(m.get_ref().resources.iter().map(|r| r.type_name.as_str()).collect::<Vec<_>>(), [TYPE]);
        assert!(m.get_ref().server_capabilities.as_ref().is_some_and(|c| c.plan_destroy));
    }

    #[test]
    fn validation_diagnostics_carry_attribute_paths() {
        let svc = fake_service(&Store::default());
        let validate = |config: Value| {
            run(svc.validate_resource_config(Request::new(pb::validate_resource_config::Request {
                type_name: TYPE.into(),
                config: dv(&config),
                client_capabilities: None,
            })))
            .expect("validate")
            .into_inner()
            .diagnostics
        };
        assert!(validate(object(&[("name", "a".into())])).is_empty());
        assert!(validate(object(&[("name", Value::Unknown)])).is_empty());
        let d = validate(object(&[("name", "".into())]));
        assert_eq!(summaries(&d), ["Empty name"]);
        assert_eq!(path_of(&d[0]), ["name"]);
    }

    #[test]
    fn an_unknown_resource_type_is_an_error_diagnostic_in_every_rpc() {
        let svc = fake_service(&Store::default());
        let unknown = "Unknown resource type";
        let v = run(svc.validate_resource_config(Request::new(pb::validate_resource_config::Request {
            type_name: "orgsec_nothing".into(),
            ..Default::default()
        })))
        .expect("validate");
        assert_eq!(summaries(&v.get_ref().diagnostics), [unknown]);
        let p = run(svc.plan_resource_change(Request::new(pb::plan_resource_change::Request {
            type_name: "orgsec_nothing".into(),
            ..Default::default()
        })))
        .expect("plan");
        assert_eq!(summaries(&p.get_ref().diagnostics), [unknown]);
        let i = run(svc.import_resource_state(Request::new(pb::import_resource_state::Request {
            type_name: "orgsec_nothing".into(),
            id: "x".into(),
            ..Default::default()
        })))
        .expect("import");
        assert_eq!(summaries(&i.get_ref().diagnostics), [unknown]);
        assert!(i.get_ref().imported_resources.is_empty());
        let prior = dv(&object(&[("id", "fake-1".into()), ("name", "a".into())]));
        let a = run(svc.apply_resource_change(Request::new(pb::apply_resource_change::Request {
            type_name: "orgsec_nothing".into(),
            prior_state: prior.clone(),
            ..Default::default()
        })))
        .expect("apply");
        assert_eq!(summaries(&a.get_ref().diagnostics), [unknown]);
        assert_eq!(a.get_ref().new_state, prior, "a failed apply hands the prior state back");
    }

    #[test]
    fn stored_state_is_upgraded_from_json_dropping_removed_attributes() {
        let svc = fake_service(&Store::default());
        let upgrade = |version: i64, json: &str| {
            run(svc.upgrade_resource_state(Request::new(pb::upgrade_resource_state::Request {
                type_name: TYPE.into(),
                version,
                raw_state: Some(pb::RawState { json: json.as_bytes().to_vec(), flatmap: Default::default() }),
            })))
            .expect("upgrade")
            .into_inner()
        };
        let up = upgrade(0, r#"{"id":"fake-1","name":"a","revision":3,"removed_long_ago":true}"#);
        assert!(up.diagnostics.is_empty(), "{:?}", up.diagnostics);
        let expected = object(&[("id", "fake-1".into()), ("name", "a".into()), ("revision", 3.into())]);
        assert_eq!(value(up.upgraded_state), expected);

        let empty = upgrade(0, "");
        assert!(empty.diagnostics.is_empty());
        assert_eq!(value(empty.upgraded_state), Value::Null);

        let newer = upgrade(1, r#"{"id":"fake-1"}"#);
        assert_eq!(summaries(&newer.diagnostics), ["State from a newer provider"]);
        assert!(newer.upgraded_state.is_none());

        let bad = upgrade(0, r#"{"id":"fake-1","revision":"three"}"#);
        assert_eq!(summaries(&bad.diagnostics), ["Invalid stored state"]);
        assert_eq!(path_of(&bad.diagnostics[0]), ["revision"]);
    }

    #[test]
    fn planning_needs_no_configured_provider() {
        let svc = fake_service(&Store::default());
        let config = object(&[("name", "a".into())]);
        let (planned, replace) = run(plan(&svc, &Value::Null, &config));
        assert!(replace.is_empty());
        let expected = object(&[
            ("id", Value::Unknown),
            ("name", "a".into()),
            ("level", Value::Unknown),
            ("revision", Value::Unknown),
        ]);
        assert_eq!(planned, expected);
    }

    #[test]
    fn resource_calls_before_configuration_fail_keeping_state() {
        let svc = fake_service(&Store::default());
        let state = object(&[("id", "fake-1".into()), ("name", "a".into()), ("revision", 1.into())]);
        let (after_read, d) = run(read(&svc, &state));
        assert_eq!(summaries(&d), ["Provider not configured"]);
        assert_eq!(after_read, state);
        let (after_apply, d) = run(apply(&svc, &state, &Value::Null));
        assert_eq!(summaries(&d), ["Provider not configured"]);
        assert_eq!(after_apply, state);
        // Reading a resource that is not there needs nothing from AWS.
        let (gone, d) = run(read(&svc, &Value::Null));
        assert!(d.is_empty());
        assert_eq!(gone, Value::Null);
    }

    // -----------------------------------------------------------------------------------------
    // Resource identity: the fake opts in with `Identity::Aws("id")`.

    fn identity_ty() -> Type {
        Identity::Aws("id").value_type()
    }

    fn idv(v: &Value) -> PbIdentity {
        let msgpack = tfvalue::encode_msgpack(v, &identity_ty()).expect("encode identity");
        Some(pb::ResourceIdentityData { identity_data: Some(pb::DynamicValue { msgpack, json: vec![] }) })
    }

    fn identity_value(d: PbIdentity) -> Value {
        decode_identity(d.as_ref(), Identity::Aws("id")).expect("decode identity")
    }

    fn identity(account: &str, id: &str) -> Value {
        Value::Object(BTreeMap::from([
            ("account_id".to_string(), account.into()),
            ("region".to_string(), REGION.into()),
            ("id".to_string(), id.into()),
        ]))
    }

    async fn plan_with_identity(
        svc: &ProviderService,
        prior: &Value,
        config: &Value,
        prior_identity: &Value,
    ) -> pb::plan_resource_change::Response {
        let proposed = if config.is_null() { Value::Null } else { propose(prior, config) };
        svc.plan_resource_change(Request::new(pb::plan_resource_change::Request {
            type_name: TYPE.into(),
            prior_state: dv(prior),
            proposed_new_state: dv(&proposed),
            config: dv(config),
            prior_identity: idv(prior_identity),
            ..Default::default()
        }))
        .await
        .expect("plan")
        .into_inner()
    }

    async fn apply_with_identity(
        svc: &ProviderService,
        prior: &Value,
        planned: &Value,
        planned_identity: PbIdentity,
    ) -> pb::apply_resource_change::Response {
        svc.apply_resource_change(Request::new(pb::apply_resource_change::Request {
            type_name: TYPE.into(),
            prior_state: dv(prior),
            planned_state: dv(planned),
            config: dv(planned),
            planned_identity,
            ..Default::default()
        }))
        .await
        .expect("apply")
        .into_inner()
    }

    async fn read_with_identity(
        svc: &ProviderService,
        state: &Value,
        current_identity: &Value,
    ) -> pb::read_resource::Response {
        svc.read_resource(Request::new(pb::read_resource::Request {
            type_name: TYPE.into(),
            current_state: dv(state),
            current_identity: idv(current_identity),
            ..Default::default()
        }))
        .await
        .expect("read")
        .into_inner()
    }

    async fn import_by(svc: &ProviderService, id: &str, identity: &Value) -> pb::import_resource_state::Response {
        svc.import_resource_state(Request::new(pb::import_resource_state::Request {
            type_name: TYPE.into(),
            id: id.into(),
            identity: idv(identity),
            ..Default::default()
        }))
        .await
        .expect("import")
        .into_inner()
    }

    #[test]
    fn identity_schemas_are_served_for_resources_that_opt_in() {
        let svc = fake_service(&Store::default());
        let r = run(svc.get_resource_identity_schemas(Request::new(pb::get_resource_identity_schemas::Request {})))
            .expect("identity schemas")
            .into_inner();
        assert!(r.diagnostics.is_empty());
        let s = r.identity_schemas.get(TYPE).expect("fake identity schema");
        assert_eq!(s.version, 0);
        let attrs: Vec<_> = s
            .identity_attributes
            .iter()
            .map(|a| (a.name.as_str(), a.r#type.as_slice(), a.required_for_import, a.optional_for_import))
            .collect();
        assert_eq!(
            attrs,
            [
                ("account_id", &b"\"string\""[..], false, true),
                ("region", &b"\"string\""[..], false, true),
                ("id", &b"\"string\""[..], true, false)
            ]
        );
        assert!(s.identity_attributes.iter().all(|a| !a.description.is_empty()));

        // The real provider: the opted-in resources, the orchestrator's with `id` alone.
        let real = ProviderService::new(Provider::new(Box::new(|_| None)).with_resources(crate::resources::all()));
        let r = run(real.get_resource_identity_schemas(Request::new(pb::get_resource_identity_schemas::Request {})))
            .expect("identity schemas")
            .into_inner();
        for t in [
            "orgsec_securityhub_account",
            "orgsec_guardduty_detector",
            "orgsec_access_analyzer",
            "orgsec_hub_membership",
            "orgsec_remediation_binding",
        ] {
            assert!(r.identity_schemas.contains_key(t), "{t} has no identity schema");
        }
        let binding = &r.identity_schemas["orgsec_remediation_binding"];
        assert_eq!(binding.identity_attributes.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["id"]);
        // A provider without resources serves none.
        let none = run(service_without_resources()).identity_schemas;
        assert!(none.is_empty());
    }

    async fn service_without_resources() -> pb::get_resource_identity_schemas::Response {
        ProviderService::new(Provider::new(Box::new(|_| None)))
            .get_resource_identity_schemas(Request::new(pb::get_resource_identity_schemas::Request {}))
            .await
            .expect("identity schemas")
            .into_inner()
    }

    #[test]
    fn identity_is_returned_on_plan_apply_read_and_import() {
        run(async {
            let store = Store::default();
            let svc = configured_in(&store, ACCOUNT);
            let config = object(&[("name", "a".into())]);

            // Create: no planned identity while the id is unknown (Terraform cannot render one
            // with unknown values).
            let p = plan_with_identity(&svc, &Value::Null, &config, &Value::Null).await;
            assert!(p.diagnostics.is_empty(), "{:?}", p.diagnostics);
            assert_eq!(p.planned_identity, None);
            let planned = value(p.planned_state);
            let a = apply_with_identity(&svc, &Value::Null, &planned, p.planned_identity).await;
            assert!(a.diagnostics.is_empty(), "{:?}", a.diagnostics);
            let state = value(a.new_state);
            let stored = identity_value(a.new_identity);
            assert_eq!(stored, identity(ACCOUNT, "fake-1"));

            // Read: the same identity; from a state that has none yet, too.
            for current in [&stored, &Value::Null] {
                let r = read_with_identity(&svc, &state, current).await;
                assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);
                assert_eq!(identity_value(r.new_identity), stored);
            }

            // Update and no change: the stored identity, known.
            let changed = object(&[("name", "a".into()), ("note", "n".into())]);
            for config in [&config, &changed] {
                let p = plan_with_identity(&svc, &state, config, &stored).await;
                assert!(p.diagnostics.is_empty(), "{:?}", p.diagnostics);
                assert_eq!(identity_value(p.planned_identity), stored);
            }
            let p = plan_with_identity(&svc, &state, &changed, &stored).await;
            let a = apply_with_identity(&svc, &state, &value(p.planned_state), p.planned_identity).await;
            assert!(a.diagnostics.is_empty(), "{:?}", a.diagnostics);
            assert_eq!(identity_value(a.new_identity), stored);

            // Import by id: the identity comes with the imported state.
            let i = import_by(&svc, "fake-1", &Value::Null).await;
            assert!(i.diagnostics.is_empty(), "{:?}", i.diagnostics);
            assert_eq!(identity_value(i.imported_resources[0].identity.clone()), stored);

            // Destroy: the plan keeps the prior identity, the apply leaves none.
            let p = plan_with_identity(&svc, &state, &Value::Null, &stored).await;
            assert_eq!(identity_value(p.planned_identity.clone()), stored);
            let a = apply_with_identity(&svc, &state, &Value::Null, p.planned_identity).await;
            assert!(a.diagnostics.is_empty(), "{:?}", a.diagnostics);
            assert_eq!((value(a.new_state), a.new_identity), (Value::Null, None));

            // Gone: the read returns no identity.
            let r = read_with_identity(&svc, &state, &stored).await;
            assert_eq!((value(r.new_state), r.new_identity), (Value::Null, None));
        });
    }

    #[test]
    fn import_by_identity_checks_the_account() {
        run(async {
            let svc = configured_in(&Store::default(), ACCOUNT);
            let only_id = Value::Object(BTreeMap::from([
                ("account_id".to_string(), Value::Null),
                ("region".to_string(), Value::Null),
                ("id".to_string(), "fake-7".into()),
            ]));
            for requested in [&only_id, &identity(ACCOUNT, "fake-7")] {
                let i = import_by(&svc, "", requested).await;
                assert!(i.diagnostics.is_empty(), "{:?}", i.diagnostics);
                let [one] = i.imported_resources.as_slice() else { panic!("one imported resource") };
                assert_eq!(value(one.state.clone()), object(&[("id", "fake-7".into())]));
                assert_eq!(identity_value(one.identity.clone()), identity(ACCOUNT, "fake-7"));
            }

            let i = import_by(&svc, "", &identity("111111111111", "fake-7")).await;
            assert_eq!(summaries(&i.diagnostics), ["Import identity names another account"]);
            let detail = &i.diagnostics[0].detail;
            assert!(detail.contains("111111111111") && detail.contains(ACCOUNT), "{detail}");
            assert!(i.imported_resources.is_empty());

            // Garbage in the identity is a diagnostic.
            let garbage = Some(pb::ResourceIdentityData {
                identity_data: Some(pb::DynamicValue { msgpack: vec![0xc1], json: vec![] }),
            });
            let i = run_import(&svc, garbage).await;
            assert_eq!(summaries(&i.diagnostics), ["Invalid identity from Terraform"]);
        });
    }

    async fn run_import(svc: &ProviderService, identity: PbIdentity) -> pb::import_resource_state::Response {
        svc.import_resource_state(Request::new(pb::import_resource_state::Request {
            type_name: TYPE.into(),
            identity,
            ..Default::default()
        }))
        .await
        .expect("import")
        .into_inner()
    }

    #[test]
    fn a_changed_identity_is_refused_and_state_kept() {
        run(async {
            let store = Store::default();
            let svc = configured_in(&store, ACCOUNT);
            let (planned, _) = plan(&svc, &Value::Null, &object(&[("name", "a".into())])).await;
            let (state, _) = apply(&svc, &Value::Null, &planned).await;
            // Recorded in another account: the provider has been pointed elsewhere since.
            let recorded = identity("111111111111", "fake-1");
            let r = read_with_identity(&svc, &state, &recorded).await;
            assert_eq!(summaries(&r.diagnostics), ["Resource identity changed"]);
            assert_eq!((value(r.new_state), identity_value(r.new_identity)), (state.clone(), recorded.clone()));
            let p = plan_with_identity(&svc, &state, &object(&[("name", "a".into())]), &recorded).await;
            assert_eq!(summaries(&p.diagnostics), ["Resource identity changed"]);
        });
    }

    #[test]
    fn a_failed_update_hands_back_the_identity() {
        run(async {
            let store = Store::default();
            let svc = configured_in(&store, ACCOUNT);
            let (planned, _) = plan(&svc, &Value::Null, &object(&[("name", "a".into())])).await;
            let (state, _) = apply(&svc, &Value::Null, &planned).await;
            let stored = identity(ACCOUNT, "fake-1");
            objects(&store).clear();
            let p =
                plan_with_identity(&svc, &state, &object(&[("name", "a".into()), ("note", "x".into())]), &stored).await;
            let a = apply_with_identity(&svc, &state, &value(p.planned_state), p.planned_identity).await;
            assert_eq!(summaries(&a.diagnostics), ["updating a fake that is gone"]);
            assert_eq!((value(a.new_state), identity_value(a.new_identity)), (state, stored));
        });
    }

    #[test]
    fn stored_identity_is_upgraded_from_version_zero() {
        let svc = fake_service(&Store::default());
        let upgrade = |type_name: &str, version: i64, json: &str| {
            run(svc.upgrade_resource_identity(Request::new(pb::upgrade_resource_identity::Request {
                type_name: type_name.into(),
                version,
                raw_identity: Some(pb::RawState { json: json.as_bytes().to_vec(), flatmap: Default::default() }),
            })))
            .expect("upgrade")
            .into_inner()
        };
        let up = upgrade(TYPE, 0, r#"{"account_id":"666666666666","region":"us-east-1","id":"fake-1"}"#);
        assert!(up.diagnostics.is_empty(), "{:?}", up.diagnostics);
        assert_eq!(identity_value(up.upgraded_identity), identity(ACCOUNT, "fake-1"));
        let newer = upgrade(TYPE, 1, r#"{"id":"fake-1"}"#);
        assert_eq!(summaries(&newer.diagnostics), ["Identity from a newer provider"]);
        assert!(newer.upgraded_identity.is_none());
        let bad = upgrade(TYPE, 0, r#"{"id":true,"arn":"x"}"#);
        assert_eq!(summaries(&bad.diagnostics), ["Invalid stored identity"]);
        assert_eq!(summaries(&upgrade("orgsec_nothing", 0, "{}").diagnostics), ["Unknown resource type"]);
    }

    /// An identity value Terraform might send: each attribute a string, null or unknown.
    fn arbitrary_identity() -> impl Strategy<Value = Value> {
        let part = || prop_oneof![Just(Value::Null), Just(Value::Unknown), "[a-z0-9-]{0,3}".prop_map(Value::from)];
        let object = (part(), part(), part()).prop_map(|(account, region, id)| {
            Value::Object(BTreeMap::from([
                ("account_id".to_string(), account),
                ("region".to_string(), region),
                ("id".to_string(), id),
            ]))
        });
        prop_oneof![Just(Value::Null), Just(Value::Unknown), object]
    }

    proptest! {
        /// Whatever bytes arrive as an identity, in every RPC that takes one, the answer is a
        /// response, never a panic; an identity in an answer is one Terraform accepts.
        #[test]
        fn arbitrary_identity_bytes_never_panic(state in arbitrary_object(),
                                                bytes in proptest::collection::vec(any::<u8>(), 0..64),
                                                version in -1i64..3,
                                                as_json in any::<bool>()) {
            let svc = configured_in(&Store::default(), ACCOUNT);
            let identity = Some(pb::ResourceIdentityData { identity_data: Some(if as_json {
                pb::DynamicValue { msgpack: vec![], json: bytes.clone() }
            } else {
                pb::DynamicValue { msgpack: bytes.clone(), json: vec![] }
            }) });
            let state = plan::unknowns_to_null(&state);
            let t = || TYPE.to_string();
            let read = run(svc.read_resource(Request::new(pb::read_resource::Request {
                type_name: t(), current_state: dv(&state), current_identity: identity.clone(), ..Default::default() })));
            prop_assert!(read.is_ok());
            let planned = run(svc.plan_resource_change(Request::new(pb::plan_resource_change::Request {
                type_name: t(), prior_state: dv(&state), proposed_new_state: dv(&state), config: dv(&state),
                prior_identity: identity.clone(), ..Default::default() })));
            prop_assert!(planned.is_ok());
            let applied = run(svc.apply_resource_change(Request::new(pb::apply_resource_change::Request {
                type_name: t(), prior_state: dv(&state), planned_state: dv(&state), config: dv(&state),
                planned_identity: identity.clone(), ..Default::default() })));
            prop_assert!(applied.is_ok());
            let imported = run(svc.import_resource_state(Request::new(pb::import_resource_state::Request {
                type_name: t(), identity: identity.clone(), ..Default::default() })));
            prop_assert!(imported.is_ok());
            let upgraded = run(svc.upgrade_resource_identity(Request::new(pb::upgrade_resource_identity::Request {
                type_name: t(), version, raw_identity: Some(pb::RawState { json: bytes, flatmap: Default::default() }) })));
            prop_assert!(upgraded.is_ok());
        }

        /// Well-formed identities in any combination: every answer's identity is wholly known
        /// (or absent).
        #[test]
        fn any_well_formed_identity_gets_an_acceptable_answer(prior in arbitrary_object(),
                                                              config in prop_oneof![Just(Value::Null), arbitrary_object()],
                                                              stored in arbitrary_identity()) {
            let store = Store::default();
            let svc = configured_in(&store, ACCOUNT);
            let prior = plan::unknowns_to_null(&prior);
            if let Some(id) = prior.get_attr("id").and_then(Value::as_str) {
                objects(&store).insert(id.to_string(), prior.clone());
            }
            let r = run(read_with_identity(&svc, &prior, &stored));
            if r.diagnostics.is_empty() {
                prop_assert!(identity_value(r.new_identity).is_known_fully());
            }
            let p = run(plan_with_identity(&svc, &prior, &config, &stored));
            let planned_identity = identity_value(p.planned_identity.clone());
            prop_assert!(planned_identity.is_known_fully(), "{:?}", planned_identity);
            if p.diagnostics.is_empty() {
                let a = run(apply_with_identity(&svc, &prior, &value(p.planned_state), p.planned_identity));
                prop_assert!(identity_value(a.new_identity).is_known_fully());
            }
            let i = run(import_by(&svc, "", &stored));
            prop_assert!(i.imported_resources.iter().all(|x| identity_value(x.identity.clone()).is_known_fully()));
        }
    }

    proptest! {
        /// Whatever bytes arrive in any resource RPC's values, the answer is a response, never a
        /// panic.
        #[test]
        fn arbitrary_value_bytes_never_panic(a in proptest::collection::vec(any::<u8>(), 0..96),
                                             b in proptest::collection::vec(any::<u8>(), 0..96),
                                             c in proptest::collection::vec(any::<u8>(), 0..96),
                                             as_json in any::<bool>()) {
            let svc = fake_service(&Store::default());
            let dv = |bytes: &[u8]| Some(if as_json {
                pb::DynamicValue { msgpack: vec![], json: bytes.to_vec() }
            } else {
                pb::DynamicValue { msgpack: bytes.to_vec(), json: vec![] }
            });
            let t = || TYPE.to_string();
            let validated = run(svc.validate_resource_config(Request::new(pb::validate_resource_config::Request {
                type_name: t(), config: dv(&a), client_capabilities: None })));
            prop_assert!(validated.is_ok());
            let upgraded = run(svc.upgrade_resource_state(Request::new(pb::upgrade_resource_state::Request {
                type_name: t(), version: 0, raw_state: Some(pb::RawState { json: a.clone(), flatmap: Default::default() }) })));
            prop_assert!(upgraded.is_ok());
            let read = run(svc.read_resource(Request::new(pb::read_resource::Request {
                type_name: t(), current_state: dv(&a), private: b.clone(), ..Default::default() })));
            prop_assert!(read.is_ok());
            let planned = run(svc.plan_resource_change(Request::new(pb::plan_resource_change::Request {
                type_name: t(), prior_state: dv(&a), proposed_new_state: dv(&b), config: dv(&c), ..Default::default() })));
            prop_assert!(planned.is_ok());
            let applied = run(svc.apply_resource_change(Request::new(pb::apply_resource_change::Request {
                type_name: t(), prior_state: dv(&a), planned_state: dv(&b), config: dv(&c), ..Default::default() })));
            prop_assert!(applied.is_ok());
            let imported = run(svc.import_resource_state(Request::new(pb::import_resource_state::Request {
                type_name: t(), id: String::from_utf8_lossy(&a).into_owned(), ..Default::default() })));
            prop_assert!(imported.is_ok());
        }
    }

    // -----------------------------------------------------------------------------------------
    // With a configured provider. Configuring connects to AWS, and the AWS SDK takes credentials
    // from the process environment, which a test cannot set safely. So
    // `lifecycle_with_a_configured_provider` runs the `configured_*` tests in a child process of
    // this test binary, with credentials in its environment and the provider's endpoint at a
    // stand-in for STS. Run directly (`--include-ignored`), they return at once.

    const CHILD: &str = "ORGSEC_RESOURCE_TESTS_CHILD";

    #[test]
    fn lifecycle_with_a_configured_provider() {
        let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"));
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("AWS_") {
                child.env_remove(k);
            }
        }
        let out = child
            .args(["--ignored", "grpc::resource_tests::configured_"])
            .env(CHILD, "1")
            .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .expect("run the configured tests");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("test result: ok. 3 passed"), "{stdout}");
    }

    /// A stand-in for STS on loopback: every request gets GetCallerIdentity's answer.
    async fn fake_sts() -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        const BODY: &str = "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
            <GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/test</Arn><UserId>AIDTEST</UserId>\
            <Account>123456789012</Account></GetCallerIdentityResult>\
            <ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetCallerIdentityResponse>";
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    // Read the head, then as much body as it announces.
                    let (mut buf, mut chunk) = (Vec::new(), [0u8; 4096]);
                    loop {
                        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|head| {
                            let head_text = String::from_utf8_lossy(&buf[..head]).to_ascii_lowercase();
                            let len = head_text
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok());
                            head + 4 + len.unwrap_or(0)
                        });
                        if end.is_some_and(|e| buf.len() >= e) {
                            break;
                        }
                        match conn.read(&mut chunk).await {
                            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                            _ => return,
                        }
                    }
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{BODY}",
                        BODY.len()
                    );
                    let _ = conn.write_all(resp.as_bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        format!("http://{addr}")
    }

    /// The service with the fake resource, configured against the stand-in STS; `None` outside
    /// the child process.
    async fn configured(store: &Store) -> Option<ProviderService> {
        std::env::var_os(CHILD)?;
        let svc = fake_service(store);
        let ty = svc.core().schema().value_type();
        let Type::Object { attributes, .. } = &ty else { panic!("the provider schema is an object") };
        let mut config: BTreeMap<String, Value> = attributes.keys().map(|k| (k.clone(), Value::Null)).collect();
        config.insert("region".into(), "us-east-1".into());
        config.insert("endpoint_url".into(), fake_sts().await.into());
        let msgpack = tfvalue::encode_msgpack(&Value::Object(config), &ty).expect("encode");
        let resp = svc
            .configure_provider(Request::new(pb::configure_provider::Request {
                terraform_version: "1.15.5".into(),
                config: Some(pb::DynamicValue { msgpack, json: vec![] }),
                client_capabilities: None,
            }))
            .await
            .expect("configure")
            .into_inner();
        assert!(resp.diagnostics.is_empty(), "{:?}", resp.diagnostics);
        Some(svc)
    }

    fn run_io<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime").block_on(f)
    }

    #[test]
    #[ignore = "run by lifecycle_with_a_configured_provider"]
    fn configured_create_read_update_replace_import_delete() {
        run_io(async {
            let store = Store::default();
            let Some(svc) = configured(&store).await else { return };

            // Create: computed attributes are unknown in the plan and known after apply.
            let config = object(&[("name", "a".into()), ("note", "n1".into())]);
            let (planned, replace) = plan(&svc, &Value::Null, &config).await;
            assert!(replace.is_empty());
            assert_eq!(planned.get_attr("id"), Some(&Value::Unknown));
            let (state, d) = apply(&svc, &Value::Null, &planned).await;
            assert!(d.is_empty(), "{d:?}");
            let created = object(&[
                ("id", "fake-1".into()),
                ("name", "a".into()),
                ("note", "n1".into()),
                ("level", "standard".into()),
                ("revision", 1.into()),
            ]);
            assert_eq!(state, created);

            // Read it back; planning the same configuration again changes nothing.
            let (read_back, d) = read(&svc, &state).await;
            assert!(d.is_empty(), "{d:?}");
            assert_eq!(read_back, created);
            let (again, replace) = plan(&svc, &read_back, &config).await;
            assert_eq!((again, replace.len()), (created.clone(), 0));

            // Update in place: the id survives (use_state_for_unknown), the revision does not.
            let config = object(&[("name", "a".into()), ("note", "n2".into())]);
            let (planned, replace) = plan(&svc, &created, &config).await;
            assert!(replace.is_empty());
            assert_eq!(planned.get_attr("id"), Some(&"fake-1".into()));
            assert_eq!(planned.get_attr("revision"), Some(&Value::Unknown));
            let (updated, d) = apply(&svc, &created, &planned).await;
            assert!(d.is_empty(), "{d:?}");
            assert_eq!(updated, with(&created, &[("note", "n2".into()), ("revision", 2.into())]));

            // A new name replaces the object.
            let (planned, replace) = plan(&svc, &updated, &object(&[("name", "b".into())])).await;
            assert_eq!(replace, [["name"]]);
            assert_eq!(planned.get_attr("id"), Some(&Value::Unknown));

            // Import by id, then the read that Terraform follows it with fills in the rest.
            let imported = svc
                .import_resource_state(Request::new(pb::import_resource_state::Request {
                    type_name: TYPE.into(),
                    id: "fake-1".into(),
                    ..Default::default()
                }))
                .await
                .expect("import")
                .into_inner();
            assert!(imported.diagnostics.is_empty(), "{:?}", imported.diagnostics);
            let [one] = imported.imported_resources.as_slice() else { panic!("one imported resource") };
            assert_eq!(one.type_name, TYPE);
            let stub = value(one.state.clone());
            assert_eq!(stub, object(&[("id", "fake-1".into())]));
            assert_eq!(read(&svc, &stub).await, (updated.clone(), vec![]));

            // Destroy: a null plan, then delete.
            let (planned, replace) = plan(&svc, &updated, &Value::Null).await;
            assert_eq!((&planned, replace.len()), (&Value::Null, 0));
            let (after, d) = apply(&svc, &updated, &Value::Null).await;
            assert!(d.is_empty(), "{d:?}");
            assert_eq!(after, Value::Null);
            assert!(objects(&store).is_empty());
        });
    }

    #[test]
    #[ignore = "run by lifecycle_with_a_configured_provider"]
    fn configured_read_of_a_vanished_resource_is_null() {
        run_io(async {
            let store = Store::default();
            let Some(svc) = configured(&store).await else { return };
            let (planned, _) = plan(&svc, &Value::Null, &object(&[("name", "a".into())])).await;
            let (state, _) = apply(&svc, &Value::Null, &planned).await;
            objects(&store).clear();
            // Gone outside Terraform: the state comes back null (and the private data as it was).
            let (after, d) = read(&svc, &state).await;
            assert!(d.is_empty(), "{d:?}");
            assert_eq!(after, Value::Null);
        });
    }

    #[test]
    #[ignore = "run by lifecycle_with_a_configured_provider"]
    fn configured_apply_failures_keep_state_and_unknowns_are_refused() {
        run_io(async {
            let store = Store::default();
            let Some(svc) = configured(&store).await else { return };
            let (planned, _) = plan(&svc, &Value::Null, &object(&[("name", "a".into())])).await;
            let (state, _) = apply(&svc, &Value::Null, &planned).await;

            // The update fails: Terraform gets the prior state back, with the error.
            objects(&store).clear();
            let (planned, _) = plan(&svc, &state, &object(&[("name", "a".into()), ("note", "x".into())])).await;
            let (after, d) = apply(&svc, &state, &planned).await;
            assert_eq!(summaries(&d), ["updating a fake that is gone"]);
            assert_eq!(after, state);

            // A resource that leaves a value unknown after create: an error on that attribute,
            // and the rest of the new object kept, the unknown as null.
            let (planned, _) = plan(&svc, &Value::Null, &object(&[("name", "leave-unknown".into())])).await;
            let (after, d) = apply(&svc, &Value::Null, &planned).await;
            assert_eq!(summaries(&d), ["Provider returned an unknown value"]);
            assert_eq!(path_of(&d[0]), ["revision"]);
            assert_eq!(after.get_attr("revision"), Some(&Value::Null));
            assert_eq!(after.get_attr("name"), Some(&"leave-unknown".into()));
        });
    }

    /// Every resource value Terraform might send, built from the fake's own attribute values.
    fn arbitrary_object() -> impl Strategy<Value = Value> {
        let string = prop_oneof![Just(Value::Null), Just(Value::Unknown), "[a-z]{0,3}".prop_map(Value::from)];
        let number = prop_oneof![Just(Value::Null), Just(Value::Unknown), any::<i64>().prop_map(Value::from)];
        (string.clone(), string.clone(), string.clone(), string, number).prop_map(
            |(id, name, note, level, revision)| {
                object(&[("id", id), ("name", name), ("note", note), ("level", level), ("revision", revision)])
            },
        )
    }

    proptest! {
        /// Well-formed values in any combination plan without errors, and the plan keeps
        /// every configured value.
        #[test]
        fn any_well_formed_change_plans(prior in prop_oneof![Just(Value::Null), arbitrary_object()],
                                        config in prop_oneof![Just(Value::Null), arbitrary_object()]) {
            let svc = fake_service(&Store::default());
            let (planned, _) = run(plan(&svc, &prior, &config));
            if config.is_null() {
                prop_assert_eq!(planned, Value::Null);
            } else {
                for k in ["name", "note"] {
                    prop_assert_eq!(planned.get_attr(k), config.get_attr(k));
                }
            }
        }
    }
}

/// The data source RPCs, end to end through the service, with a data source that needs no AWS.
#[cfg(test)]
mod data_source_tests {
    use std::collections::BTreeMap;

    use orgsec_proto::tfplugin6::provider_server::Provider as _;
    use proptest::prelude::*;

    use super::*;
    use crate::aws::Aws;
    use crate::framework::{BoxFuture, Ctx, DataSource};

    const TYPE: &str = "orgsec_echo";

    /// `orgsec_echo`: `greeting` is required, `reply` computed as "<greeting>, back". A greeting
    /// of "rewrite" makes it change the configured value, as a buggy data source would; "bad" is
    /// rejected by validation.
    struct Echo;

    impl DataSource for Echo {
        fn type_name(&self) -> &'static str {
            TYPE
        }

        fn schema(&self) -> Schema {
            Schema {
                version: 0,
                block: Block {
                    description: "",
                    attributes: vec![
                        Attribute::required("greeting", Type::String, ""),
                        Attribute::computed("reply", Type::String, ""),
                    ],
                    blocks: vec![],
                },
            }
        }

        fn validate(&self, config: &Value, diags: &mut Diagnostics) {
            if config.get_attr("greeting").and_then(Value::as_str) == Some("bad") {
                diags.error_at(AttrPath::root("greeting"), "Bad greeting", "");
            }
        }

        fn read<'a>(&'a self, _ctx: &'a Ctx, config: &'a Value) -> BoxFuture<'a, Result<Value, Diagnostics>> {
            Box::pin(async move {
                let greeting = config.get_attr("greeting").and_then(Value::as_str).unwrap_or_default();
                let mut out = BTreeMap::new();
                let kept = if greeting == "rewrite" { "rewritten" } else { greeting };
                out.insert("greeting".to_string(), Value::String(kept.to_string()));
                out.insert("reply".to_string(), Value::String(format!("{greeting}, back")));
                Ok(Value::Object(out))
            })
        }
    }

    fn service(configured: bool) -> ProviderService {
        let p = Provider::new(Box::new(|_| None)).with_data_sources(vec![Box::new(Echo)]);
        let p = if configured {
            let sdk = aws_config::SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build();
            p.configured_with(Aws::from_parts(sdk, "111111111111", "us-east-1"), None)
        } else {
            p
        };
        ProviderService::new(p)
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
    }

    fn ty() -> Type {
        Echo.schema().value_type()
    }

    fn config(greeting: Value) -> Value {
        Value::Object(BTreeMap::from([("greeting".to_string(), greeting), ("reply".to_string(), Value::Null)]))
    }

    fn read(svc: &ProviderService, type_name: &str, v: &Value) -> (Value, Vec<String>, Vec<Vec<String>>) {
        let config =
            Some(pb::DynamicValue { msgpack: tfvalue::encode_msgpack(v, &ty()).expect("encode"), json: vec![] });
        let r = run(svc.read_data_source(Request::new(pb::read_data_source::Request {
            type_name: type_name.into(),
            config,
            provider_meta: None,
            client_capabilities: None,
        })))
        .expect("read")
        .into_inner();
        let state = r.state.map_or(Value::Null, |s| tfvalue::decode_msgpack(&s.msgpack, &ty()).expect("decode"));
        (state, summaries(&r.diagnostics), paths(&r.diagnostics))
    }

    fn summaries(d: &[pb::Diagnostic]) -> Vec<String> {
        d.iter().map(|x| x.summary.clone()).collect()
    }

    fn paths(d: &[pb::Diagnostic]) -> Vec<Vec<String>> {
        use pb::attribute_path::step::Selector;
        d.iter()
            .map(|x| {
                x.attribute
                    .iter()
                    .flat_map(|p| &p.steps)
                    .filter_map(|s| match &s.selector {
                        Some(Selector::AttributeName(n)) => Some(n.clone()),
                        _ => None,
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn data_sources_are_in_the_schema_and_metadata() {
        let svc = service(false);
        let schema = run(svc.get_provider_schema(Request::new(pb::get_provider_schema::Request {}))).expect("schema");
        assert!(schema.into_inner().data_source_schemas.contains_key(TYPE));
        let meta = run(svc.get_metadata(Request::new(pb::get_metadata::Request {}))).expect("metadata").into_inner();
        assert_eq!(meta.data_sources.iter().map(|d| d.type_name.as_str()).collect::<Vec<_>>(), [TYPE]);
    }

    #[test]
    fn read_fills_computed_attributes_and_keeps_the_configuration() {
        let (state, d, _) = read(&service(true), TYPE, &config("hello".into()));
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(state.get_attr("reply"), Some(&Value::String("hello, back".into())));
        assert_eq!(state.get_attr("greeting"), Some(&Value::String("hello".into())));
    }

    #[test]
    fn read_failures_are_diagnostics_on_their_attribute() {
        let (state, d, p) = read(&service(true), TYPE, &config(Value::Unknown));
        assert_eq!(
            (state, d, p),
            (Value::Null, vec!["Data source configuration not known yet".into()], vec![vec!["greeting".into()]])
        );
        let (_, d, p) = read(&service(true), TYPE, &config("rewrite".into()));
        assert_eq!((d, p), (vec!["Provider changed a configured value".into()], vec![vec!["greeting".into()]]));
        let (_, d, _) = read(&service(false), TYPE, &config("hello".into()));
        assert_eq!(d, ["Provider not configured"]);
        let (_, d, _) = read(&service(true), "orgsec_nothing", &config("hello".into()));
        assert_eq!(d, ["Unknown data source"]);
    }

    #[test]
    fn validation_names_the_attribute() {
        let v = config("bad".into());
        let config =
            Some(pb::DynamicValue { msgpack: tfvalue::encode_msgpack(&v, &ty()).expect("encode"), json: vec![] });
        let r = run(service(false).validate_data_resource_config(Request::new(
            pb::validate_data_resource_config::Request { type_name: TYPE.into(), config },
        )))
        .expect("validate")
        .into_inner();
        assert_eq!(summaries(&r.diagnostics), ["Bad greeting"]);
        assert_eq!(paths(&r.diagnostics), [vec!["greeting".to_string()]]);
    }

    proptest! {
        /// Whatever bytes arrive as a data source's configuration, the answer is a response,
        /// never a panic.
        #[test]
        fn arbitrary_data_source_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128),
                                                   as_json in any::<bool>()) {
            let svc = service(true);
            let dv = Some(if as_json {
                pb::DynamicValue { msgpack: vec![], json: bytes.clone() }
            } else {
                pb::DynamicValue { msgpack: bytes.clone(), json: vec![] }
            });
            let v = run(svc.validate_data_resource_config(Request::new(pb::validate_data_resource_config::Request {
                type_name: TYPE.into(), config: dv.clone() })));
            prop_assert!(v.is_ok());
            let r = run(svc.read_data_source(Request::new(pb::read_data_source::Request {
                type_name: TYPE.into(), config: dv, provider_meta: None, client_capabilities: None })));
            prop_assert!(r.is_ok());
        }
    }
}
