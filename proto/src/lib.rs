//! Protocol buffer bindings used by orgsec.
//!
//! * [`tfplugin6`]: the Terraform plugin protocol, major version 6 at minor
//!   revision 6.10, which is what Terraform 1.15 speaks to providers. The
//!   provider side is [`tfplugin6::provider_server::ProviderServer`]; the
//!   client ([`tfplugin6::provider_client::ProviderClient`]) plays Terraform
//!   Core in tests.
//! * [`plugin`]: the two small services of the go-plugin framework that a
//!   plugin process serves next to the provider: `GRPCController` (Core asks
//!   the plugin to shut down) and `GRPCStdio` (forwards the plugin's
//!   stdout/stderr to Core).
//!
//! * [`orgsec::v1`]: the orchestrator's own API (`proto/orgsec/v1/`): remediation bindings, the
//!   playbook catalogue and posture scores. The Terraform provider is a client of it.
//!
//! The `.proto` sources sit at the root of this crate and are compiled by
//! `build.rs` with a vendored `protoc`; the generated code is included from
//! `OUT_DIR`. Wire facts (message names, field numbers and types, enum values,
//! RPC names) must match the published definitions exactly, since Terraform
//! and go-plugin are the peers on the other end.

/// Terraform plugin protocol v6 (revision 6.10): messages, the `Provider`
/// service's server and client.
pub mod tfplugin6 {
    tonic::include_proto!("tfplugin6");
}

/// go-plugin's `plugin` package: the `GRPCController` and `GRPCStdio`
/// services.
pub mod plugin {
    tonic::include_proto!("plugin");
}

/// The orchestrator's API.
pub mod orgsec {
    /// Version 1: bindings, playbooks, posture, accounts, findings; remediation and evidence.
    pub mod v1 {
        tonic::include_proto!("orgsec.v1");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use prost::Message;

    use super::plugin;
    use super::tfplugin6::{self, DynamicValue, Schema, ServerCapabilities};

    /// Splits an encoded message into its top-level `(field number, wire
    /// type, payload)` entries. Only the wire types protobuf 3 uses here are
    /// handled: varint (0) and length-delimited (2).
    fn fields(mut buf: &[u8]) -> Vec<(u32, u8, Vec<u8>)> {
        fn varint(buf: &mut &[u8]) -> u64 {
            let mut value = 0u64;
            let mut shift = 0;
            loop {
                let byte = buf[0];
                *buf = &buf[1..];
                value |= u64::from(byte & 0x7f) << shift;
                if byte & 0x80 == 0 {
                    return value;
                }
                shift += 7;
            }
        }

        let mut out = Vec::new();
        while !buf.is_empty() {
            let key = varint(&mut buf);
            let number = u32::try_from(key >> 3).expect("field number fits u32");
            let wire_type = (key & 7) as u8;
            match wire_type {
                0 => {
                    let v = varint(&mut buf);
                    out.push((number, 0, v.to_le_bytes().to_vec()));
                }
                2 => {
                    let len = usize::try_from(varint(&mut buf)).expect("length fits usize");
                    out.push((number, 2, buf[..len].to_vec()));
                    buf = &buf[len..];
                }
                other => panic!("unexpected wire type {other} for field {number}"),
            }
        }
        out
    }

    fn numbers(entries: &[(u32, u8, Vec<u8>)]) -> Vec<u32> {
        entries.iter().map(|(n, _, _)| *n).collect()
    }

    #[test]
    fn dynamic_value_uses_field_1_for_msgpack_and_2_for_json() {
        let value = DynamicValue { msgpack: vec![0x81, 0xa1, b'a', 0x01], json: b"{}".to_vec() };
        let encoded = value.encode_to_vec();
        // Hand-computed: tag (1 << 3 | 2) = 0x0a, then tag (2 << 3 | 2) = 0x12.
        assert_eq!(encoded, [0x0a, 4, 0x81, 0xa1, b'a', 0x01, 0x12, 2, b'{', b'}']);
        assert_eq!(DynamicValue::decode(encoded.as_slice()).unwrap(), value);
    }

    #[test]
    fn get_provider_schema_response_field_numbers() {
        let schema = Schema {
            version: 3,
            block: Some(tfplugin6::schema::Block {
                attributes: vec![tfplugin6::schema::Attribute {
                    name: "id".into(),
                    r#type: br#""string""#.to_vec(),
                    computed: true,
                    ..Default::default()
                }],
                ..Default::default()
            }),
        };
        let response = tfplugin6::get_provider_schema::Response {
            provider: Some(schema.clone()),
            resource_schemas: HashMap::from([("orgsec_thing".into(), schema.clone())]),
            data_source_schemas: HashMap::from([("orgsec_thing".into(), schema.clone())]),
            diagnostics: vec![tfplugin6::Diagnostic {
                severity: tfplugin6::diagnostic::Severity::Warning as i32,
                summary: "s".into(),
                ..Default::default()
            }],
            provider_meta: Some(schema.clone()),
            server_capabilities: Some(ServerCapabilities {
                plan_destroy: true,
                get_provider_schema_optional: true,
                move_resource_state: false,
                generate_resource_config: true,
            }),
            functions: HashMap::from([("f".into(), tfplugin6::Function::default())]),
            ephemeral_resource_schemas: HashMap::from([("orgsec_e".into(), schema.clone())]),
            list_resource_schemas: HashMap::from([("orgsec_l".into(), schema.clone())]),
            state_store_schemas: HashMap::from([("orgsec_s".into(), schema.clone())]),
            action_schemas: HashMap::from([(
                "orgsec_a".into(),
                tfplugin6::ActionSchema { schema: Some(schema.clone()) },
            )]),
        };
        let encoded = response.encode_to_vec();
        let entries = fields(&encoded);
        let mut seen = numbers(&entries);
        seen.sort_unstable();
        assert_eq!(seen, (1..=11).collect::<Vec<u32>>());
        assert!(entries.iter().all(|(_, wire_type, _)| *wire_type == 2));

        // provider (1) is the Schema itself: version = 1 (varint), block = 2.
        let provider = &entries.iter().find(|(n, _, _)| *n == 1).unwrap().2;
        let inner = fields(provider);
        assert_eq!(numbers(&inner), [1, 2]);
        assert_eq!(inner[0].2[0], 3, "schema version");

        // A map entry is a message with key = 1 and value = 2.
        let resource_entry = &entries.iter().find(|(n, _, _)| *n == 2).unwrap().2;
        let kv = fields(resource_entry);
        assert_eq!(numbers(&kv), [1, 2]);
        assert_eq!(kv[0].2, b"orgsec_thing");

        // server_capabilities (6): plan_destroy 1, optional-schema 2,
        // generate_resource_config 4 (move_resource_state is false so absent).
        let caps = &entries.iter().find(|(n, _, _)| *n == 6).unwrap().2;
        assert_eq!(numbers(&fields(caps)), [1, 2, 4]);

        assert_eq!(tfplugin6::get_provider_schema::Response::decode(encoded.as_slice()).unwrap(), response);
    }

    #[test]
    fn oddly_numbered_fields_keep_their_published_numbers() {
        // ValidateProviderConfig.Response puts diagnostics at 2, not 1.
        let r = tfplugin6::validate_provider_config::Response { diagnostics: vec![tfplugin6::Diagnostic::default()] };
        assert_eq!(numbers(&fields(&r.encode_to_vec())), [2]);

        // Schema.Attribute.nested_type is 10 and write_only is 11.
        let a = tfplugin6::schema::Attribute {
            nested_type: Some(tfplugin6::schema::Object::default()),
            write_only: true,
            ..Default::default()
        };
        let mut seen = numbers(&fields(&a.encode_to_vec()));
        seen.sort_unstable();
        assert_eq!(seen, [10, 11]);

        // StopProvider.Response has a capitalised `Error` field at 1.
        let s = tfplugin6::stop_provider::Response { error: "boom".into() };
        assert_eq!(s.encode_to_vec(), [0x0a, 4, b'b', b'o', b'o', b'm']);

        // Deferred reasons and nesting modes are wire values too.
        assert_eq!(tfplugin6::deferred::Reason::AbsentPrereq as i32, 3);
        assert_eq!(tfplugin6::schema::nested_block::NestingMode::Group as i32, 5);
        assert_eq!(tfplugin6::StringKind::Markdown as i32, 1);
    }

    #[test]
    fn streaming_event_messages_round_trip() {
        let event = tfplugin6::invoke_action::Event {
            r#type: Some(tfplugin6::invoke_action::event::Type::Completed(
                tfplugin6::invoke_action::event::Completed::default(),
            )),
        };
        // Completed is oneof member 2 and is present even when empty.
        assert_eq!(event.encode_to_vec(), [0x12, 0]);

        let list = tfplugin6::list_resource::Event {
            display_name: "x".into(),
            resource_object: Some(DynamicValue::default()),
            ..Default::default()
        };
        assert_eq!(numbers(&fields(&list.encode_to_vec())), [2, 3]);

        let stdio = plugin::StdioData { channel: plugin::stdio_data::Channel::Stderr as i32, data: b"hi".to_vec() };
        assert_eq!(stdio.encode_to_vec(), [0x08, 2, 0x12, 2, b'h', b'i']);
    }

    #[test]
    fn ephemeral_renew_at_is_a_timestamp() {
        let r = tfplugin6::open_ephemeral_resource::Response {
            renew_at: Some(prost_types::Timestamp { seconds: 1, nanos: 0 }),
            ..Default::default()
        };
        // renew_at = 2, holding Timestamp.seconds = 1 (field 1, varint).
        assert_eq!(r.encode_to_vec(), [0x12, 2, 0x08, 1]);
    }

    #[test]
    fn generated_services_exist() {
        // Type-level checks: the server wrappers, their traits and the
        // clients are generated under the names the rest of the workspace
        // uses. Each server is named after the proto service.
        fn is_server<T: tonic::server::NamedService>() -> &'static str {
            T::NAME
        }
        assert_eq!(is_server::<tfplugin6::provider_server::ProviderServer<Unimplemented>>(), "tfplugin6.Provider");
        assert_eq!(
            is_server::<plugin::grpc_controller_server::GrpcControllerServer<Unimplemented>>(),
            "plugin.GRPCController"
        );
        assert_eq!(is_server::<plugin::grpc_stdio_server::GrpcStdioServer<Unimplemented>>(), "plugin.GRPCStdio");
        let _ = std::any::type_name::<tfplugin6::provider_client::ProviderClient<()>>();
        let _ = std::any::type_name::<plugin::grpc_controller_client::GrpcControllerClient<()>>();
    }

    /// Placeholder service type; the servers only need `T` for the type
    /// check above, never for a call.
    struct Unimplemented;
}
