//! The tfplugin6 `Provider` service. It only translates: protobuf in, plain Rust
//! ([`crate::framework`]) in the middle, protobuf out. RPCs the provider does not support yet
//! answer `Unimplemented`; nothing here may panic on any input.

use std::pin::Pin;
use std::sync::Arc;

use orgsec_proto::tfplugin6 as pb;
use tonic::{Request, Response, Status};

use crate::framework::diag::Step;
use crate::framework::schema::{Attribute, Block, NestedBlock, Nesting, Schema};
use crate::framework::{Diagnostics, Provider, Severity};
use crate::tfvalue::{self, Type, Value};

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
}

type Stream<T> = Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send + 'static>>;

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
    use pb::attribute_path::step::Selector;
    d.0.iter()
        .map(|x| pb::Diagnostic {
            severity: match x.severity {
                Severity::Error => pb::diagnostic::Severity::Error,
                Severity::Warning => pb::diagnostic::Severity::Warning,
            } as i32,
            summary: x.summary.clone(),
            detail: x.detail.clone(),
            attribute: x.path.as_ref().map(|p| pb::AttributePath {
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
            }),
        })
        .collect()
}

/// Decodes a DynamicValue of type `ty`; a decoding failure is an error diagnostic.
pub fn decode(dv: Option<&pb::DynamicValue>, ty: &Type) -> Result<Value, Diagnostics> {
    let mut d = Diagnostics::default();
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
        d.error("Invalid value from Terraform", format!("The provider could not decode a value Terraform sent: {e}"));
        d
    })
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
            Ok(v) => self.core.configure(&v),
            Err(d) => d,
        };
        Ok(Response::new(pb::configure_provider::Response { diagnostics: diagnostics_to_pb(&diagnostics) }))
    }

    async fn get_resource_identity_schemas(
        &self,
        _request: Request<pb::get_resource_identity_schemas::Request>,
    ) -> Result<Response<pb::get_resource_identity_schemas::Response>, Status> {
        Ok(Response::new(pb::get_resource_identity_schemas::Response::default()))
    }

    async fn stop_provider(
        &self,
        _request: Request<pb::stop_provider::Request>,
    ) -> Result<Response<pb::stop_provider::Response>, Status> {
        Ok(Response::new(pb::stop_provider::Response { error: String::new() }))
    }

    // Everything below is not offered by the schema yet, so Terraform does not call it.

    async fn validate_resource_config(
        &self,
        _r: Request<pb::validate_resource_config::Request>,
    ) -> Result<Response<pb::validate_resource_config::Response>, Status> {
        unimplemented("resources yet")
    }
    async fn validate_data_resource_config(
        &self,
        _r: Request<pb::validate_data_resource_config::Request>,
    ) -> Result<Response<pb::validate_data_resource_config::Response>, Status> {
        unimplemented("data sources yet")
    }
    async fn upgrade_resource_state(
        &self,
        _r: Request<pb::upgrade_resource_state::Request>,
    ) -> Result<Response<pb::upgrade_resource_state::Response>, Status> {
        unimplemented("resources yet")
    }
    async fn upgrade_resource_identity(
        &self,
        _r: Request<pb::upgrade_resource_identity::Request>,
    ) -> Result<Response<pb::upgrade_resource_identity::Response>, Status> {
        unimplemented("resource identity yet")
    }
    async fn read_resource(
        &self,
        _r: Request<pb::read_resource::Request>,
    ) -> Result<Response<pb::read_resource::Response>, Status> {
        unimplemented("resources yet")
    }
    async fn plan_resource_change(
        &self,
        _r: Request<pb::plan_resource_change::Request>,
    ) -> Result<Response<pb::plan_resource_change::Response>, Status> {
        unimplemented("resources yet")
    }
    async fn apply_resource_change(
        &self,
        _r: Request<pb::apply_resource_change::Request>,
    ) -> Result<Response<pb::apply_resource_change::Response>, Status> {
        unimplemented("resources yet")
    }
    async fn import_resource_state(
        &self,
        _r: Request<pb::import_resource_state::Request>,
    ) -> Result<Response<pb::import_resource_state::Response>, Status> {
        unimplemented("resources yet")
    }
    async fn move_resource_state(
        &self,
        _r: Request<pb::move_resource_state::Request>,
    ) -> Result<Response<pb::move_resource_state::Response>, Status> {
        unimplemented("moving resource state")
    }
    async fn read_data_source(
        &self,
        _r: Request<pb::read_data_source::Request>,
    ) -> Result<Response<pb::read_data_source::Response>, Status> {
        unimplemented("data sources yet")
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
        tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(f)
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
        /// panic (a panic would take terraform down with the provider).
        #[test]
        fn arbitrary_configuration_bytes_never_panic(msgpack in proptest::collection::vec(any::<u8>(), 0..256),
                                                     json in proptest::collection::vec(any::<u8>(), 0..64)) {
            let svc = service();
            let req = pb::DynamicValue { msgpack, json };
            let v = run(svc.validate_provider_config(Request::new(pb::validate_provider_config::Request { config: Some(req.clone()) })));
            prop_assert!(v.is_ok());
            let c = run(svc.configure_provider(Request::new(pb::configure_provider::Request {
                terraform_version: "1.15.5".into(), config: Some(req), client_capabilities: None })));
            prop_assert!(c.is_ok());
        }
    }
}
