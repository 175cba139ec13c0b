import Testing

@Test func placeholder_URingTests() { #expect(Bool(true)) }
