import Testing

@Test func placeholder_RingTests() { #expect(Bool(true)) }
