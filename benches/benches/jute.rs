//! Encode and decode of the two most common frames: a create request and a
//! getData response, each with 100 bytes of data.

#![allow(missing_docs)]

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use zk_benches::{data, stat, world_anyone};
use zk_jute::{
    CreateRequest, FrameDecoder, GetDataResponse, Jute, OpCode, Reader, ReplyHeader, Request,
    Response, encode_frame,
};

/// A create of a 30-character path with 100 bytes of data and the open ACL.
fn create_request() -> Request {
    Request::Create(CreateRequest {
        path: "/app/service/instances/node-01".into(),
        data: Some(data(100)),
        acl: world_anyone(),
        flags: 0,
    })
}

/// A getData reply: 100 bytes of data and the stat.
fn get_data_response() -> (ReplyHeader, Response) {
    (
        ReplyHeader {
            xid: 42,
            zxid: 0x1_0000_0042,
            err: 0,
        },
        Response::GetData(GetDataResponse {
            data: Some(data(100)),
            stat: stat(100),
        }),
    )
}

fn request_frame(req: &Request) -> Bytes {
    let mut out = BytesMut::new();
    encode_frame(&mut out, |o| req.encode_frame(42, o));
    out.freeze()
}

fn response_frame(h: &ReplyHeader, resp: &Response) -> Bytes {
    let mut out = BytesMut::new();
    encode_frame(&mut out, |o| resp.encode_frame(h, o));
    out.freeze()
}

fn create(c: &mut Criterion) {
    let req = create_request();
    let frame = request_frame(&req);
    let mut g = c.benchmark_group("create_request");
    g.throughput(Throughput::Bytes(frame.len() as u64));
    g.bench_function("encode", |b| {
        let mut out = BytesMut::with_capacity(256);
        b.iter(|| {
            out.clear();
            encode_frame(&mut out, |o| black_box(&req).encode_frame(42, o));
            black_box(out.len())
        });
    });
    g.bench_function("decode", |b| {
        let decoder = FrameDecoder::default();
        b.iter(|| {
            let mut buf = BytesMut::from(&black_box(&frame)[..]);
            let body = decoder.decode(&mut buf).unwrap().unwrap();
            black_box(Request::decode_frame(body).unwrap())
        });
    });
    g.finish();
}

fn get_data(c: &mut Criterion) {
    let (h, resp) = get_data_response();
    let frame = response_frame(&h, &resp);
    let mut g = c.benchmark_group("get_data_response");
    g.throughput(Throughput::Bytes(frame.len() as u64));
    g.bench_function("encode", |b| {
        let mut out = BytesMut::with_capacity(256);
        b.iter(|| {
            out.clear();
            encode_frame(&mut out, |o| black_box(&resp).encode_frame(&h, o));
            black_box(out.len())
        });
    });
    g.bench_function("decode", |b| {
        let decoder = FrameDecoder::default();
        b.iter(|| {
            let mut buf = BytesMut::from(&black_box(&frame)[..]);
            let body = decoder.decode(&mut buf).unwrap().unwrap();
            let mut r = Reader::new(body);
            let h = ReplyHeader::read(&mut r).unwrap();
            black_box((h, Response::read_body(OpCode::GetData, &mut r).unwrap()))
        });
    });
    g.finish();
}

criterion_group!(benches, create, get_data);
criterion_main!(benches);
