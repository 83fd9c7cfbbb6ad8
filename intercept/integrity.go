package main

import "encoding/binary"

// The integrity check of CUDA 12 runtimes: cudart passes a version and the
// time, and compares the driver's answer with its own HMAC, over MD2
// (RFC 1319), of what both can see: the driver's version, the check's
// version, the process and thread, the addresses of the cudart-interface
// table, the integrity table and its function, the time, then each
// device's UUID and PCI location. The key is a constant of the protocol.

// integrityKey is the HMAC key both sides use.
var integrityKey = [16]byte{0x14, 0x6a, 0xdd, 0xae, 0x53, 0xa9, 0xa7, 0x52, 0xaa, 0x08, 0x41, 0x36, 0x0b, 0xf5, 0x5a, 0x9f}

// Check versions ending in 0 and 1 predate the HMAC: the driver answers
// them with fixed words.
var integrityFixed = [2][2]uint64{
	{0x3341181c03cb675c, 0x8ed383aa1f4cd1e8},
	{0x1841181c03cb675c, 0x8ed383aa1f4cd1e8},
}

// integrityAddrs are the addresses the check mixes in, as the program
// sees them.
type integrityAddrs struct {
	cudartTable, integrityTable, integrityFn uint64
}

// integrityDevice is one device's part of the message.
type integrityDevice struct {
	uuid [16]byte
	pci  [3]int32 // domain, bus, device
}

type integrityInput struct {
	driverVersion, version, process, thread uint32
	addrs                                   integrityAddrs
	unixSeconds                             uint64
	devices                                 []integrityDevice
}

// message lays the input out as the C structs cudart hashes: 48 bytes,
// then 28 per device, little-endian.
func (in *integrityInput) message() []byte {
	b := make([]byte, 0, 48+28*len(in.devices))
	le := binary.LittleEndian
	b = le.AppendUint32(b, in.driverVersion)
	b = le.AppendUint32(b, in.version)
	b = le.AppendUint32(b, in.process)
	b = le.AppendUint32(b, in.thread)
	b = le.AppendUint64(b, in.addrs.cudartTable)
	b = le.AppendUint64(b, in.addrs.integrityTable)
	b = le.AppendUint64(b, in.addrs.integrityFn)
	b = le.AppendUint64(b, in.unixSeconds)
	for _, d := range in.devices {
		b = append(b, d.uuid[:]...)
		for _, v := range d.pci {
			b = le.AppendUint32(b, uint32(v))
		}
	}
	return b
}

// sum is the driver's answer: two words of the HMAC, read little-endian.
func (in *integrityInput) sum() [2]uint64 {
	switch in.version % 10 {
	case 0, 1:
		return integrityFixed[in.version%10]
	}
	mac := hmacMD2(integrityKey[:], in.message())
	return [2]uint64{binary.LittleEndian.Uint64(mac[:8]), binary.LittleEndian.Uint64(mac[8:])}
}

// hmacMD2 is HMAC (RFC 2104) over MD2, whose block is 16 bytes.
func hmacMD2(key, msg []byte) [16]byte {
	var k [16]byte
	if len(key) > len(k) {
		sum := md2Sum(key)
		key = sum[:]
	}
	copy(k[:], key)
	var pad [16]byte
	for i := range pad {
		pad[i] = k[i] ^ 0x36
	}
	inner := md2Sum(append(pad[:], msg...))
	for i := range pad {
		pad[i] = k[i] ^ 0x5c
	}
	return md2Sum(append(pad[:], inner[:]...))
}

// md2Sum is the MD2 digest of msg (RFC 1319).
func md2Sum(msg []byte) [16]byte {
	var x [48]byte
	var c [16]byte
	n := 16 - len(msg)%16
	padded := make([]byte, len(msg)+n)
	copy(padded, msg)
	for i := len(msg); i < len(padded); i++ {
		padded[i] = byte(n)
	}
	for off := 0; off < len(padded); off += 16 {
		block := padded[off : off+16]
		last := c[15]
		for j, m := range block {
			c[j] ^= md2S[m^last]
			last = c[j]
		}
		md2Block(&x, block)
	}
	md2Block(&x, c[:])
	var out [16]byte
	copy(out[:], x[:16])
	return out
}

func md2Block(x *[48]byte, block []byte) {
	for j := range 16 {
		x[16+j] = block[j]
		x[32+j] = x[16+j] ^ x[j]
	}
	var t byte
	for round := range 18 {
		for k := range x {
			x[k] ^= md2S[t]
			t = x[k]
		}
		t += byte(round)
	}
}

// md2S is RFC 1319's permutation of 0..255 from the digits of pi.
var md2S = [256]byte{
	41, 46, 67, 201, 162, 216, 124, 1, 61, 54, 84, 161, 236, 240, 6, 19,
	98, 167, 5, 243, 192, 199, 115, 140, 152, 147, 43, 217, 188, 76, 130, 202,
	30, 155, 87, 60, 253, 212, 224, 22, 103, 66, 111, 24, 138, 23, 229, 18,
	190, 78, 196, 214, 218, 158, 222, 73, 160, 251, 245, 142, 187, 47, 238, 122,
	169, 104, 121, 145, 21, 178, 7, 63, 148, 194, 16, 137, 11, 34, 95, 33,
	128, 127, 93, 154, 90, 144, 50, 39, 53, 62, 204, 231, 191, 247, 151, 3,
	255, 25, 48, 179, 72, 165, 181, 209, 215, 94, 146, 42, 172, 86, 170, 198,
	79, 184, 56, 210, 150, 164, 125, 182, 118, 252, 107, 226, 156, 116, 4, 241,
	69, 157, 112, 89, 100, 113, 135, 32, 134, 91, 207, 101, 230, 45, 168, 2,
	27, 96, 37, 173, 174, 176, 185, 246, 28, 70, 97, 105, 52, 64, 126, 15,
	85, 71, 163, 35, 221, 81, 175, 58, 195, 92, 249, 206, 186, 197, 234, 38,
	44, 83, 13, 110, 133, 40, 132, 9, 211, 223, 205, 244, 65, 129, 77, 82,
	106, 220, 55, 200, 108, 193, 171, 250, 36, 225, 123, 8, 12, 189, 177, 74,
	120, 136, 149, 139, 227, 99, 232, 109, 233, 203, 213, 254, 59, 0, 29, 57,
	242, 239, 183, 14, 102, 88, 208, 228, 166, 119, 114, 248, 235, 117, 75, 10,
	49, 68, 80, 180, 143, 237, 31, 26, 219, 153, 141, 51, 159, 17, 131, 20,
}
