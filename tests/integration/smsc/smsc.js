#!/usr/bin/env node
// An SMSC for Pigeon's interoperability tests, built on the npm `smpp` package (0.5.x) in
// server mode: a peer this project did not write (DESIGN.md §5).
//
// It binds ESMEs, answers submit_sm with message ids, sends delivery receipts (standard
// text + receipted_message_id and message_state TLVs), injects MO deliver_sm (single or
// multipart with UDH or SAR), throttles, and drops connections — store-and-forward like a
// real SMSC: a deliver_sm not acknowledged with ESME_ROK is sent again later. Receipts and MO
// go as data_sm instead when configured (deliver_command), as some SMSCs send them.
//
// Control: one JSON object per line on stdin ({"id": 1, "cmd": "...", ...}); replies and
// events are JSON lines on stdout ({"reply": 1, ...} / {"event": "...", ...}).
// Usage: node smsc.js [port] [--tls KEY CERT [CLIENT_CA]]
//   port 0 or nothing: an ephemeral port, printed in the "listening" event; --tls: SMPP over
//   TLS with that key and certificate (PEM), and with CLIENT_CA, a client certificate signed
//   by it is required (the package's own TLS server: createServer with key and cert).
'use strict';

const readline = require('readline');
const smpp = require('smpp');

// Keep the raw short_message: the package decodes it, and the tests check the exact octets.
const originalFilter = smpp.PDU.prototype._filter;
smpp.PDU.prototype._filter = function (func) {
  if (func === 'decode' && Buffer.isBuffer(this.short_message)) {
    this._raw_short_message = Buffer.from(this.short_message);
  }
  if (func === 'decode' && Buffer.isBuffer(this.message_payload)) {
    this._raw_message_payload = Buffer.from(this.message_payload);
  }
  return originalFilter.call(this, func);
};

const options = {
  system_id: 'pigeon',
  password: 'secret',
  refuse_bind: 0, // command_status answered to every bind (0: accept)
  throttle_first: 0, // answer this many submit_sm with throttle_status
  throttle_status: smpp.ESME_RTHROTTLED,
  reject: {}, // destination_addr -> command_status
  // What to do with each of the next submit_sm, one entry per submit_sm (then as usual):
  // 0 = as usual, a command_status = refuse with it, "no_resp" = accept it (id, receipt) and
  // never send its submit_sm_resp — the SMSC took the message and the answer was lost;
  // {"late_ms": N} = accept it and send its submit_sm_resp only N ms later (a slow SMSC);
  // {"late_ms": N, "status": S} = refuse it with command_status S, only N ms later.
  submit_script: [],
  id_format: 'decimal', // submit_sm_resp ids: "decimal" or "hex" (receipt text ids are always decimal)
  receipts: true,
  receipt_delay_ms: 30,
  receipt_stat: {}, // destination_addr -> stat (default DELIVRD)
  receipt_err: {}, // destination_addr -> the receipt text's err value (default 000 delivered, 001 not)
  drop_after_submits: 0, // close every session right after answering this many more submits
  down_ms: 0, // after a drop, hang up on new connections for this long
  quiet: false, // no per-PDU events (benchmarks: the driver would spend CPU reading them)
  // What receipts and MO go as: "deliver_sm", or "data_sm" (SMPP 3.4 §4.7: no short_message,
  // the text in message_payload; a receipt also gets a network_error_code TLV for its err).
  // The mo and receipt commands take a "command" of their own.
  deliver_command: 'deliver_sm',
  data_sm_receipt_text: true, // false: data_sm receipts carry their TLVs only, no text
};

const state = {
  sessions: new Set(),
  nextId: 4100000 + Math.floor(Math.random() * 1000),
  submits: [], // every submit_sm answered ESME_ROK or otherwise
  binds: [],
  outbox: [], // deliver_sm still owed: {pdu options, attempts}
  acked: [], // deliver_sm acknowledged by the ESME
  downUntil: 0,
  acceptedSinceConfigure: 0,
  maxBound: 0, // the most sessions bound at one time (a carrier account's bind limit is on this)
};

function countBound() {
  const bound = [...state.sessions].filter((s) => s.bound).length;
  state.maxBound = Math.max(state.maxBound, bound);
  return bound;
}

const PER_PDU = new Set(['submit', 'deliver_acked', 'deliver_refused']);

function emit(obj) {
  if (options.quiet && PER_PDU.has(obj.event)) return;
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function smppDate(d) {
  const p = (n) => String(n).padStart(2, '0');
  return p(d.getUTCFullYear() % 100) + p(d.getUTCMonth() + 1) + p(d.getUTCDate()) + p(d.getUTCHours()) + p(d.getUTCMinutes());
}

function canReceive(session) {
  return session.bound && !session.dead && (session.mode === 'transceiver' || session.mode === 'receiver');
}

function flushOutbox() {
  const receivers = [...state.sessions].filter(canReceive);
  if (receivers.length === 0) return;
  const owed = state.outbox.splice(0);
  owed.forEach((item, i) => sendDeliver(receivers[i % receivers.length], item));
}

// deliver_sm fields that data_sm does not have (SMPP 3.4 §4.7.1).
const DELIVER_SM_ONLY = ['protocol_id', 'priority_flag', 'schedule_delivery_time', 'validity_period',
  'replace_if_present_flag', 'sm_default_msg_id'];

function dataSmFields(item) {
  const fields = Object.assign({}, item.options);
  DELIVER_SM_ONLY.forEach((key) => delete fields[key]);
  if ('short_message' in fields) {
    const text = fields.short_message;
    delete fields.short_message;
    if (item.kind !== 'receipt' || options.data_sm_receipt_text) fields.message_payload = text;
  }
  if (item.kind === 'receipt') {
    const err = parseInt(item.err, 10) || 0;
    fields.network_error_code = Buffer.from([3, (err >> 8) & 0xff, err & 0xff]); // 3: GSM
  }
  return fields;
}

function sendDeliver(session, item) {
  item.attempts += 1;
  const command = item.command;
  const fields = command === 'data_sm' ? dataSmFields(item) : Object.assign({}, item.options);
  const pdu = new smpp.PDU(command, fields);
  const sent = session.send(pdu, (resp) => {
    // resp: the ESME's answer, "deliver_sm_resp"/"data_sm_resp", or "generic_nack" (not understood)
    const about = { kind: item.kind, tag: item.tag, command, resp: resp.command };
    if (resp.command_status === 0 && resp.command === `${command}_resp`) {
      state.acked.push({ kind: item.kind, tag: item.tag, attempts: item.attempts });
      emit(Object.assign({ event: 'deliver_acked', attempts: item.attempts }, about));
    } else {
      emit(Object.assign({ event: 'deliver_refused', status: resp.command_status }, about));
      setTimeout(() => { state.outbox.push(item); flushOutbox(); }, 100);
    }
  });
  if (!sent) {
    state.outbox.push(item);
    return;
  }
  (session.owed = session.owed || new Map()).set(pdu.sequence_number, item);
}

function queueDeliver(item) {
  item.attempts = 0;
  item.command = item.command || options.deliver_command;
  state.outbox.push(item);
  flushOutbox();
}

function receiptFor(record, stat) {
  const now = new Date();
  const err = options.receipt_err[record.destination_addr] || (stat === 'DELIVRD' ? '000' : '001');
  const text = `id:${record.numeric_id} sub:001 dlvrd:${stat === 'DELIVRD' ? '001' : '000'} ` +
    `submit date:${smppDate(now)} done date:${smppDate(now)} stat:${stat} ` +
    `err:${err} text:${record.text.slice(0, 20).replace(/[^\x20-\x7e]/g, '?')}`;
  const states = { DELIVRD: 2, EXPIRED: 3, DELETED: 4, UNDELIV: 5, ACCEPTD: 6, UNKNOWN: 7, REJECTD: 8 };
  return {
    kind: 'receipt',
    tag: record.message_id,
    err,
    options: {
      source_addr_ton: record.dest_addr_ton,
      source_addr_npi: record.dest_addr_npi,
      source_addr: record.destination_addr,
      dest_addr_ton: record.source_addr_ton,
      dest_addr_npi: record.source_addr_npi,
      destination_addr: record.source_addr,
      esm_class: smpp.ESM_CLASS.MC_DELIVERY_RECEIPT,
      data_coding: 0,
      short_message: Buffer.from(text, 'ascii'),
      receipted_message_id: record.message_id,
      message_state: states[stat] || 7,
    },
  };
}

function onSubmit(session, pdu) {
  if (session.dead) return; // the connection is being dropped: nothing after it is accepted
  const raw = pdu._raw_short_message || Buffer.alloc(0);
  const udhi = (pdu.esm_class & 0x40) !== 0;
  const udhLength = udhi && raw.length ? raw[0] + 1 : 0;
  const message = pdu.short_message && typeof pdu.short_message === 'object' ? pdu.short_message.message : pdu.short_message;
  const record = {
    system_id: session.system_id,
    sequence_number: pdu.sequence_number,
    source_addr: pdu.source_addr,
    source_addr_ton: pdu.source_addr_ton,
    source_addr_npi: pdu.source_addr_npi,
    destination_addr: pdu.destination_addr,
    dest_addr_ton: pdu.dest_addr_ton,
    dest_addr_npi: pdu.dest_addr_npi,
    esm_class: pdu.esm_class,
    data_coding: pdu.data_coding,
    registered_delivery: pdu.registered_delivery,
    validity_period: pdu.validity_period ? String(pdu.validity_period) : '',
    udh: (pdu.short_message && pdu.short_message.udh || []).map((b) => b.toString('hex')),
    udh_hex: raw.slice(0, udhLength).toString('hex'),
    payload_hex: raw.slice(udhLength).toString('hex'),
    text: typeof message === 'string' ? message : '',
    // long_messages = "payload" and "sar": the text in the message_payload TLV, the SAR TLVs
    message_payload_hex: pdu._raw_message_payload ? pdu._raw_message_payload.toString('hex') : null,
    message_payload_text: pdu.message_payload && typeof pdu.message_payload.message === 'string' ? pdu.message_payload.message : null,
    sar: pdu.sar_msg_ref_num !== undefined ? [pdu.sar_msg_ref_num, pdu.sar_total_segments, pdu.sar_segment_seqnum] : null,
    status: 0,
  };
  let status = 0;
  const scripted = options.submit_script.length > 0 ? options.submit_script.shift() : 0;
  const lateMs = scripted && typeof scripted === 'object' ? scripted.late_ms || 0 : 0;
  if (typeof scripted === 'number' && scripted !== 0) {
    status = scripted;
  } else if (scripted && typeof scripted === 'object' && scripted.status) {
    status = scripted.status;
  } else if (options.throttle_first > 0) {
    options.throttle_first -= 1;
    status = options.throttle_status;
  } else if (options.reject[pdu.destination_addr]) {
    status = options.reject[pdu.destination_addr];
  }
  record.status = status;
  if (lateMs) record.late_ms = lateMs;
  if (status !== 0) {
    state.submits.push(record);
    emit({ event: 'submit', record });
    const refuse = () => session.send(pdu.response({ command_status: status }));
    if (lateMs) {
      setTimeout(() => { refuse(); emit({ event: 'refused_late', status }); }, lateMs);
    } else {
      refuse();
    }
    return;
  }
  const numeric = state.nextId++;
  record.numeric_id = String(numeric);
  record.message_id = options.id_format === 'hex' ? numeric.toString(16).toUpperCase().padStart(10, '0') : String(numeric);
  record.answered = scripted !== 'no_resp';
  state.submits.push(record);
  state.acceptedSinceConfigure += 1;
  emit({ event: 'submit', record });
  const drop = options.drop_after_submits > 0 && state.acceptedSinceConfigure >= options.drop_after_submits;
  if (drop) {
    options.drop_after_submits = 0;
    for (const s of state.sessions) s.dead = true; // from here on nothing is accepted on them
  }
  if (record.answered) {
    const answer = () => session.send(pdu.response({ message_id: record.message_id }), () => {
      if (drop) dropAll(options.down_ms);
    });
    if (lateMs) {
      setTimeout(() => { answer(); emit({ event: 'answered_late', message_id: record.message_id }); }, lateMs);
    } else {
      answer();
    }
  }
  if (options.receipts && (pdu.registered_delivery & 0x03)) {
    const stat = options.receipt_stat[pdu.destination_addr] || 'DELIVRD';
    setTimeout(() => queueDeliver(receiptFor(record, stat)), options.receipt_delay_ms);
  }
}

function dropAll(downMs) {
  state.downUntil = Date.now() + (downMs || 0);
  for (const session of state.sessions) {
    session.dead = true;
    session.close(); // FIN after what was written: answers already sent still arrive
  }
  emit({ event: 'dropped', down_ms: downMs || 0 });
}

function requeueOwed(session) {
  if (!session.owed) return;
  for (const item of session.owed.values()) state.outbox.push(item);
  session.owed.clear();
}

function serverOptions(argv) {
  const at = argv.indexOf('--tls');
  if (at < 0) return {};
  const fs = require('fs');
  const [key, cert, clientCa] = argv.slice(at + 1, at + 4);
  const tlsOptions = { key: fs.readFileSync(key), cert: fs.readFileSync(cert) };
  if (clientCa) {
    Object.assign(tlsOptions, { ca: fs.readFileSync(clientCa), requestCert: true, rejectUnauthorized: true });
  }
  return tlsOptions;
}

function peer(socket) {
  if (!socket.encrypted) return { tls: false };
  const cert = socket.getPeerCertificate();
  return { tls: true, protocol: socket.getProtocol(), client_cert_cn: (cert && cert.subject && cert.subject.CN) || null };
}

const server = smpp.createServer(serverOptions(process.argv), (session) => {
  if (Date.now() < state.downUntil) {
    session.socket.destroy();
    return;
  }
  session.mode = null;
  session.bound = false;
  state.sessions.add(session);
  const onBind = (mode) => (pdu) => {
    const ok = pdu.system_id === options.system_id && pdu.password === options.password;
    const status = options.refuse_bind || (ok ? 0 : smpp.ESME_RINVPASWD);
    state.binds.push({ mode, system_id: pdu.system_id, status, system_type: pdu.system_type });
    emit({ event: 'bind', mode, system_id: pdu.system_id, status, peer: peer(session.socket) });
    session.send(pdu.response({ command_status: status, system_id: 'node-smsc' }));
    if (status !== 0) {
      session.close();
      return;
    }
    session.mode = mode;
    session.bound = true;
    session.system_id = pdu.system_id;
    countBound();
    flushOutbox();
  };
  session.on('bind_transceiver', onBind('transceiver'));
  session.on('bind_transmitter', onBind('transmitter'));
  session.on('bind_receiver', onBind('receiver'));
  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  session.on('unbind', (pdu) => {
    session.send(pdu.response());
    session.bound = false;
    session.close();
  });
  session.on('submit_sm', (pdu) => onSubmit(session, pdu));
  const settled = (pdu) => {
    if (session.owed) session.owed.delete(pdu.sequence_number);
  };
  session.on('deliver_sm_resp', settled);
  session.on('data_sm_resp', settled);
  session.on('generic_nack', settled); // refused: sendDeliver's callback queues it again
  session.on('error', () => {}); // a reset connection is an ordinary event here
  session.on('close', () => {
    session.bound = false;
    state.sessions.delete(session);
    requeueOwed(session);
    emit({ event: 'closed', mode: session.mode });
  });
});

// --- control channel ------------------------------------------------------------------------

function moItems(cmd) {
  // Parts as hex (exact octets) or as text (encoded by the package for data_coding 0 or 8).
  const parts = cmd.parts_hex ? cmd.parts_hex.map((h) => Buffer.from(h, 'hex')) : (cmd.parts || [cmd.text]);
  const total = parts.length;
  const ref = cmd.ref === undefined ? 7 : cmd.ref;
  return parts.map((part, i) => {
    const fields = {
      source_addr_ton: cmd.source_ton === undefined ? 1 : cmd.source_ton,
      source_addr_npi: 1,
      source_addr: cmd.source,
      dest_addr_ton: cmd.destination_ton === undefined ? 1 : cmd.destination_ton,
      dest_addr_npi: 1,
      destination_addr: cmd.destination,
      esm_class: 0,
      data_coding: cmd.data_coding || 0,
    };
    const concat = total > 1 ? (cmd.concat || 'udh8') : 'none';
    let udh = null;
    if (concat === 'udh8') udh = Buffer.from([0x05, 0x00, 0x03, ref & 0xff, total, i + 1]);
    if (concat === 'udh16') udh = Buffer.from([0x06, 0x08, 0x04, (ref >> 8) & 0xff, ref & 0xff, total, i + 1]);
    if (concat === 'sar') {
      fields.sar_msg_ref_num = ref;
      fields.sar_total_segments = total;
      fields.sar_segment_seqnum = i + 1;
    }
    if (udh) {
      fields.esm_class = 0x40;
      fields.short_message = Buffer.isBuffer(part) ? Buffer.concat([udh, part]) : { udh, message: part };
    } else if (cmd.message_payload) {
      fields.message_payload = part; // the TLV instead of short_message (long texts, some SMSCs always)
    } else {
      fields.short_message = part;
    }
    return { kind: 'mo', tag: `${cmd.tag || 'mo'}#${i + 1}`, command: cmd.command, options: fields };
  });
}

const handlers = {
  configure(cmd) {
    for (const [key, value] of Object.entries(cmd)) {
      if (key !== 'cmd' && key !== 'id') options[key] = value;
    }
    if ('drop_after_submits' in cmd) state.acceptedSinceConfigure = 0;
    return { options };
  },
  mo(cmd) {
    let items = moItems(cmd);
    if (cmd.omit) items = items.filter((_, i) => !cmd.omit.includes(i + 1)); // parts lost in the network
    if (cmd.reverse) items.reverse(); // parts out of order, as networks deliver them
    items.forEach(queueDeliver);
    return { queued: state.outbox.length };
  },
  receipt(cmd) {
    // A receipt for any id, e.g. one the SMSC never issued.
    const record = {
      numeric_id: cmd.text_id, message_id: cmd.message_id, text: '', source_addr: cmd.destination || '', source_addr_ton: 1, source_addr_npi: 1,
      destination_addr: cmd.source || '', dest_addr_ton: 1, dest_addr_npi: 1,
    };
    const item = receiptFor(record, cmd.stat || 'DELIVRD');
    if (cmd.tlv === false) delete item.options.receipted_message_id;
    item.command = cmd.command;
    queueDeliver(item);
    return {};
  },
  drop(cmd) {
    dropAll(cmd.down_ms || 0);
    return {};
  },
  unbind() {
    for (const session of state.sessions) if (session.bound) session.unbind();
    return {};
  },
  counts() {
    // state() without the records, whose reply grows past a line reader's limit in benchmarks.
    return {
      submits: state.submits.length,
      accepted: state.submits.filter((s) => s.status === 0).length,
      acked: state.acked.length,
      owed: state.outbox.length + [...state.sessions].reduce((n, s) => n + (s.owed ? s.owed.size : 0), 0),
      bound: countBound(),
      max_bound: state.maxBound,
    };
  },
  state() {
    return {
      submits: state.submits,
      binds: state.binds,
      acked: state.acked,
      owed: state.outbox.length + [...state.sessions].reduce((n, s) => n + (s.owed ? s.owed.size : 0), 0),
      sessions: [...state.sessions].map((s) => ({ mode: s.mode, bound: s.bound })),
      max_bound: state.maxBound,
    };
  },
};

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (!line.trim()) return;
  let cmd;
  try {
    cmd = JSON.parse(line);
    const handler = handlers[cmd.cmd];
    if (!handler) throw new Error(`unknown command ${cmd.cmd}`);
    emit(Object.assign({ reply: cmd.id }, handler(cmd)));
  } catch (err) {
    emit({ reply: cmd && cmd.id, error: String(err) });
  }
}).on('close', () => process.exit(0));

server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => {
  emit({ event: 'listening', port: server.address().port });
});
