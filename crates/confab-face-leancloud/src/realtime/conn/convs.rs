//! `conv`: start, query, members, mutes, blocks, roles and attributes of conversations.

use confab_engine::model::*;
use confab_engine::query::{ConvQuery, Field, Filter, HistoryQuery, HistoryScope, Op, Scalar};
use confab_engine::time::iso_ms;
use confab_engine::{Actor, NewConversation};
use serde_json::{Map, Value};

use super::{page, rt, split, ConnState, Reply};
use crate::conversations::{custom_fields, patch_from, render_with};
use crate::extract::{cid as render_conv_id, conv_id};
use crate::query;
use crate::realtime::proto::*;
use crate::realtime::push::command;

/// Conversation queries: default and largest page.
const QUERY_DEFAULT_LIMIT: i64 = 10;
const QUERY_MAX_LIMIT: i64 = 1000;

impl ConnState {
    pub(super) async fn conv_cmd(&mut self, op: Option<OpType>, cmd: &GenericCommand) -> Reply {
        let s = self.session(cmd)?;
        let (app, peer) = (s.app.clone(), s.handle.user.clone());
        let engine = self.gw.engine.clone();
        let me = Actor::User(peer.clone());
        let c = cmd.conv_message.clone().unwrap_or_default();
        let reply = |op: OpType, m: ConvCommand| {
            let mut r = command(CommandType::Conv, Some(op));
            r.conv_message = Some(m);
            Ok(Some(r))
        };
        match op {
            Some(OpType::Start) => self.start(&app, &peer, c).await,
            Some(OpType::Query) => self.query(&app, &peer, c).await,
            Some(op @ (OpType::Add | OpType::Remove)) => {
                let conv = self.conv(&app, c.cid.as_deref()).await?;
                let action = if op == OpType::Add { "invite" } else { "kick" };
                self.check_conv_signature(&app, &peer, c.cid.as_deref(), &c.m, Some(action), (c.s.as_deref(), c.t, c.n.as_deref()))?;
                let out = if op == OpType::Add {
                    engine.conversations().add_members(&app, &conv, c.m, &me).await?
                } else {
                    engine.conversations().remove_members(&app, &conv, c.m, &me).await?
                };
                let (allowed_pids, failed_pids) = split(out);
                let udate = Some(iso_ms(engine.now()));
                reply(
                    if op == OpType::Add { OpType::Added } else { OpType::Removed },
                    ConvCommand { allowed_pids, failed_pids, udate, ..Default::default() },
                )
            }
            Some(OpType::Update) => {
                let conv = self.conv(&app, c.cid.as_deref()).await?;
                let attrs: Map<String, Value> = match c.attr.as_ref().map(|a| serde_json::from_str(&a.data)) {
                    Some(Ok(Value::Object(m))) => m,
                    _ => return Err(rt(4306, "CONVERSATION_UPDATE_FAILED: attr must be a JSON object")),
                };
                let patch = patch_from(attrs)?;
                let updated = engine.conversations().update_conversation(&app, conv.id, None, &patch, &me).await?;
                reply(OpType::Updated, ConvCommand { cid: c.cid, udate: Some(iso_ms(updated.updated_at)), ..Default::default() })
            }
            Some(op @ (OpType::Mute | OpType::Unmute)) => {
                let conv = self.conv(&app, c.cid.as_deref()).await?;
                engine.conversations().set_notifications(&app, &conv, vec![peer.clone()], op == OpType::Mute, &me).await?;
                reply(OpType::Updated, ConvCommand { cid: c.cid, udate: Some(iso_ms(engine.now())), ..Default::default() })
            }
            Some(OpType::Count) => {
                let conv = self.conv(&app, c.cid.as_deref()).await?;
                let n = engine.conversations().member_count(&app, &conv).await?;
                reply(OpType::Result, ConvCommand { cid: c.cid, count: Some(n as i32), ..Default::default() })
            }
            Some(OpType::MaxRead) => {
                let conv = self.conv(&app, c.cid.as_deref()).await?;
                let times = engine.messages().cursor_times(&app, &conv).await?;
                let mut m = ConvCommand { cid: c.cid.clone(), ..Default::default() };
                if c.query_all_members == Some(true) {
                    m.max_read_tuples = times
                        .iter()
                        .map(|t| MaxReadTuple {
                            pid: Some(t.user.clone()),
                            max_ack_timestamp: t.delivered_at,
                            max_read_timestamp: t.read_at,
                        })
                        .collect();
                } else {
                    let others = times.iter().filter(|t| t.user != peer);
                    m.max_read_timestamp = Some(others.clone().filter_map(|t| t.read_at).max().unwrap_or(0));
                    m.max_ack_timestamp = Some(others.filter_map(|t| t.delivered_at).max().unwrap_or(0));
                }
                reply(OpType::MaxRead, m)
            }
            Some(OpType::MemberInfoUpdate) => {
                let conv = self.conv(&app, c.cid.as_deref()).await?;
                let info = c.info.clone().unwrap_or_default();
                let target = c
                    .target_client_id
                    .clone()
                    .or(info.pid.clone())
                    .ok_or_else(|| rt(4321, "UNKNOWN_CONVERSATION_ROLE: no member named"))?;
                let role = match info.role.as_deref() {
                    Some("Manager") => Role::Admin,
                    Some("Member") => Role::Member,
                    Some("Owner") => return Err(rt(4320, "CONVERSATION_OPERATION_UNAUTHORIZED: the owner cannot be changed this way")),
                    _ => return Err(rt(4321, "UNKNOWN_CONVERSATION_ROLE")),
                };
                engine.conversations().set_role(&app, &conv, &target, role, &me).await?;
                reply(OpType::MemberInfoUpdated, ConvCommand { cid: c.cid, ..Default::default() })
            }
            Some(op @ (OpType::AddShutup | OpType::RemoveShutup)) => {
                let conv = self.conv(&app, c.cid.as_deref()).await?;
                let mute = op == OpType::AddShutup;
                let out = engine.conversations().mute_members(&app, &conv, c.m, mute, None, &me).await?;
                let (allowed_pids, failed_pids) = split(out);
                reply(
                    if mute { OpType::ShutupAdded } else { OpType::ShutupRemoved },
                    ConvCommand { allowed_pids, failed_pids, ..Default::default() },
                )
            }
            Some(OpType::QueryShutup) => {
                let conv = self.conv(&app, c.cid.as_deref()).await?;
                let limit = page(c.limit.map(i64::from));
                let m = engine.conversations().muted_members(&app, &conv, c.next.clone(), limit).await?;
                let next = (m.len() as i64 == limit).then(|| m.last().cloned()).flatten();
                reply(OpType::ShutupResult, ConvCommand { m, next, ..Default::default() })
            }
            _ => Err(rt(4114, "UNSUPPORTED_COMMAND")),
        }
    }

    /// `conv start`: a conversation (unique when asked), a chat room (`transient`), or a temporary
    /// conversation (`tempConv`, `_tmp:` id).
    async fn start(&mut self, app: &App, peer: &str, c: ConvCommand) -> Reply {
        let mut members = c.m.clone();
        if !members.iter().any(|m| m == peer) {
            members.push(peer.to_string());
        }
        self.check_conv_signature(app, peer, None, &members, None, (c.s.as_deref(), c.t, c.n.as_deref()))?;
        let mut attrs: Map<String, Value> = match c.attr.as_ref().map(|a| serde_json::from_str(&a.data)) {
            None => Map::new(),
            Some(Ok(Value::Object(m))) => m,
            Some(_) => return Err(rt(4301, "CONVERSATION_API_FAILED: attr must be a JSON object")),
        };
        let name = match attrs.remove("name") {
            None | Some(Value::Null) => None,
            Some(Value::String(n)) => Some(n),
            Some(_) => return Err(rt(4301, "CONVERSATION_API_FAILED: name must be a string")),
        };
        let kind = if c.transient == Some(true) {
            ConvKind::Chatroom
        } else if c.temp_conv == Some(true) {
            ConvKind::Temporary
        } else {
            ConvKind::Normal
        };
        let new = NewConversation {
            kind: Some(kind),
            name,
            creator: Some(peer.to_string()),
            members,
            unique: c.unique == Some(true),
            attrs: custom_fields(attrs, &[])?,
            ttl_secs: c.temp_conv_ttl.map(i64::from),
            actor: Actor::User(peer.to_string()),
            ..Default::default()
        };
        let (conv, _) = self.gw.engine.conversations().create_conversation(app, new).await?;
        let mut r = command(CommandType::Conv, Some(OpType::Started));
        r.conv_message = Some(ConvCommand {
            cid: Some(render_conv_id(&conv)),
            cdate: Some(iso_ms(conv.created_at)),
            temp_conv_ttl: conv.expires_at.map(|e| ((e - conv.created_at) / 1000) as i32),
            ..Default::default()
        });
        Ok(Some(r))
    }

    /// `conv query`: LeanCloud's query language (or `tempConvIds`); results are a JSON string of
    /// conversation objects with the short keys. Flag 1 leaves out member lists, flag 2 adds each
    /// conversation's last message (for its members).
    async fn query(&self, app: &App, peer: &str, c: ConvCommand) -> Reply {
        let engine = &self.gw.engine;
        let q = if !c.temp_conv_ids.is_empty() {
            let ids: Vec<Scalar> = c.temp_conv_ids.iter().filter_map(|t| conv_id(t).ok()).map(Scalar::Int).collect();
            ConvQuery {
                kinds: Some(vec![ConvKind::Temporary]),
                filter: Filter::Cond(Field::Id, Op::In(ids)),
                limit: QUERY_MAX_LIMIT,
                ..Default::default()
            }
        } else {
            let filter = match c.r#where.as_ref() {
                None => Filter::True,
                Some(w) => {
                    let v: Value = serde_json::from_str(&w.data).map_err(|_| rt(4310, "CONVERSATION_QUERY_FAILED: where is not JSON"))?;
                    query::filter(&v)?
                }
            };
            let order = c.sort.as_deref().map(query::order).transpose()?.unwrap_or_default();
            let limit = c.limit.map(i64::from).filter(|l| *l > 0).unwrap_or(QUERY_DEFAULT_LIMIT).min(QUERY_MAX_LIMIT);
            ConvQuery { kinds: None, filter, order, skip: c.skip.map(i64::from).unwrap_or(0).max(0), limit, count: false }
        };
        let now = engine.now();
        let (convs, _) = engine.conversations().query_conversations(app, &q).await?;
        let convs: Vec<Conversation> = convs.into_iter().filter(|c| c.expires_at.is_none_or(|e| e > now)).collect();
        let ids: Vec<i64> = convs.iter().map(|c| c.id).collect();
        let members = engine.conversations().members_of(app, &ids).await?;
        let flag = c.flag.unwrap_or(0);
        let mut results = Vec::with_capacity(convs.len());
        for conv in &convs {
            let ms = members.get(&conv.id);
            let mut o = render_with(conv, ms);
            if flag & 1 != 0 {
                if let Some(obj) = o.as_object_mut() {
                    obj.remove("m");
                }
            }
            let is_member =
                ms.is_some_and(|v| v.iter().any(|m| m.user == peer)) || matches!(conv.kind, ConvKind::Chatroom | ConvKind::Service);
            if flag & 2 != 0 && is_member {
                let h = HistoryQuery {
                    scope: HistoryScope::Conv(conv.id),
                    older_than: None,
                    newer_than: None,
                    ascending: false,
                    limit: 1,
                    mtype: None,
                };
                if let Some(m) = engine.messages().history(app, &h).await?.into_iter().next() {
                    let (data, bin) = crate::render::data(&m);
                    let obj = o.as_object_mut().expect("object");
                    obj.insert("msg".into(), Value::String(data));
                    obj.insert("bin".into(), Value::Bool(bin));
                    obj.insert("msg_from".into(), Value::String(m.from.clone()));
                    obj.insert("msg_mid".into(), Value::String(crate::extract::mid(&m)));
                    obj.insert("msg_timestamp".into(), Value::from(m.timestamp));
                    if let Some(p) = m.recalled_at.or(m.edited_at) {
                        obj.insert("patch_timestamp".into(), Value::from(p));
                    }
                }
            }
            results.push(o);
        }
        let mut r = command(CommandType::Conv, Some(OpType::Results));
        r.conv_message =
            Some(ConvCommand { results: Some(JsonObjectMessage { data: Value::Array(results).to_string() }), ..Default::default() });
        Ok(Some(r))
    }
}
