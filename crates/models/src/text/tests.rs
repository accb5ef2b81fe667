//! Planted texts in English and Chinese with the polarity, topics and
//! words a reader would give them.

use super::*;

fn pol(text: &str) -> Polarity {
    sentiment(text).polarity
}

#[test]
fn english_polarity_with_negation_intensifiers_and_contrast() {
    let cases = [
        ("All good", Polarity::Positive),
        ("Great service, thank you!", Polarity::Positive),
        ("not good", Polarity::Negative),
        ("Not bad at all", Polarity::Positive),
        ("not very good", Polarity::Negative),
        ("No problems at all, very happy", Polarity::Positive),
        ("Delivery was late again", Polarity::Negative),
        ("Item arrived damaged", Polarity::Negative),
        ("Refund still not received", Polarity::Negative),
        ("I never received my refund", Polarity::Negative),
        ("Charged twice for one order", Polarity::Negative),
        ("Support never called back", Polarity::Negative),
        ("Wrong size sent", Polarity::Negative),
        ("The app doesn't work", Polarity::Negative),
        (
            "Great product but the delivery was late",
            Polarity::Negative,
        ),
        (
            "The delivery was late but the support was excellent",
            Polarity::Positive,
        ),
        ("How do I change my address?", Polarity::Neutral),
        ("Question about warranty", Polarity::Neutral),
        ("Where is my invoice?", Polarity::Neutral),
        ("", Polarity::Neutral),
    ];
    for (text, want) in cases {
        let s = sentiment(text);
        assert_eq!(s.polarity, want, "{text:?}: {s:?}");
    }
}

#[test]
fn negation_flips_and_damps_intensifiers_strengthen() {
    let good = sentiment("good").score;
    let not_good = sentiment("not good").score;
    assert!(good > 0.0 && not_good < 0.0, "{good} {not_good}");
    assert!(
        not_good.abs() < good.abs(),
        "negation damps: {not_good} vs {good}"
    );
    let bad = sentiment("bad").score;
    let very_bad = sentiment("very bad").score;
    let slightly_bad = sentiment("slightly bad").score;
    assert!(very_bad < bad && bad < slightly_bad && slightly_bad < 0.0);
    // the negation reaches three words, within its clause only
    assert_eq!(pol("it did not arrive"), Polarity::Negative);
    assert_eq!(pol("no, it was good"), Polarity::Positive);
    assert_eq!(pol("never. good"), Polarity::Positive);
    // `n't` and the curly apostrophe
    assert_eq!(pol("I didn’t receive it"), Polarity::Negative);
    // the expected word alone is neutral
    assert_eq!(pol("I received it"), Polarity::Neutral);
}

#[test]
fn scores_are_bounded_and_explained() {
    let s = sentiment("terrible awful horrible worst useless broken damaged scam fraud");
    assert!(s.score > -1.0 && s.score < -0.9, "{}", s.score);
    let s = sentiment("Refund still not received");
    assert_eq!(s.words, vec!["not received".to_string()]);
    let s = sentiment("Charged twice for one order");
    assert_eq!(s.words, vec!["charged twice".to_string()]);
    let s = sentiment("快递太慢了");
    assert_eq!(s.words, vec!["太 慢".to_string()]);
    assert_eq!(sentiment("").score, 0.0);
}

#[test]
fn chinese_polarity_with_negation_and_compounds() {
    let cases = [
        ("非常满意", Polarity::Positive),
        ("不满意", Polarity::Negative),
        ("我对这次购物很不满意", Polarity::Negative),
        ("没有收到退款", Polarity::Negative),
        ("一直没有收到货", Polarity::Negative),
        ("退款到现在还没到账", Polarity::Negative),
        ("快递太慢了，包装破损", Polarity::Negative),
        ("客服态度很好，非常满意", Polarity::Positive),
        ("尺码偏小，不合身", Polarity::Negative),
        ("价格太贵了", Polarity::Negative),
        ("东西不错", Polarity::Positive),
        ("质量很差，再也不买了", Polarity::Negative),
        ("发错货了", Polarity::Negative),
        ("物流很快，好评", Polarity::Positive),
        ("客服不回复", Polarity::Negative),
        ("衣服质量一般", Polarity::Neutral),
        ("请问怎么修改收货地址？", Polarity::Neutral),
        ("质量不错，但是物流太慢", Polarity::Negative),
        ("客服一直没有回复我", Polarity::Negative),
    ];
    for (text, want) in cases {
        let s = sentiment(text);
        assert_eq!(s.polarity, want, "{text:?}: {s:?} {:?}", tokens(text));
    }
    // negation flips the same word
    assert!(sentiment("满意").score > 0.0);
    assert!(sentiment("不满意").score < 0.0);
    assert!(sentiment("很不满意").score < sentiment("不满意").score);
}

#[test]
fn topics_in_both_languages() {
    use Topic::*;
    let cases: [(&str, &[Topic]); 15] = [
        ("Delivery was late again", &[Delivery]),
        ("Item arrived damaged", &[Delivery, Quality]),
        ("Refund still not received", &[Billing]),
        ("Charged twice for one order", &[Billing]),
        ("Support never called back", &[Support]),
        ("Wrong size sent", &[Fit, Accuracy]),
        ("Too expensive for what it is", &[Price]),
        (
            "The website keeps logging me out, can't checkout",
            &[Website],
        ),
        ("All good", &[]),
        ("没有收到退款", &[Billing]),
        ("快递太慢了，包装破损", &[Delivery, Quality]),
        ("尺码偏小，不合身", &[Fit]),
        ("价格太贵了", &[Price]),
        ("客服不回复", &[Support]),
        // `不错` is a word of its own, not `不` + `错` (wrong item)
        ("质量不错，但是物流太慢", &[Delivery, Quality]),
    ];
    for (text, want) in cases {
        let a = analyze(text);
        assert_eq!(a.topics, want, "{text:?}: {:?}", tokens(text));
    }
}

#[test]
fn language_tokens_and_keywords() {
    assert_eq!(detect_lang("Delivery was late"), TextLang::En);
    assert_eq!(detect_lang("快递太慢了"), TextLang::Zh);
    assert_eq!(detect_lang("iPhone 屏幕坏了"), TextLang::Zh);
    assert_eq!(detect_lang("The 客服 was rude to me again"), TextLang::En);
    assert_eq!(detect_lang(""), TextLang::En);
    assert_eq!(
        tokens("I didn't get it, sorry."),
        vec![
            Token::Word("i".into()),
            Token::Word("didn't".into()),
            Token::Word("get".into()),
            Token::Word("it".into()),
            Token::Break,
            Token::Word("sorry".into()),
            Token::Break,
        ]
    );
    assert_eq!(
        tokens("没有收到退款"),
        vec![
            Token::Word("没有".into()),
            Token::Word("收到".into()),
            Token::Word("退款".into()),
        ]
    );
    // a mixed text: both vocabularies, word by word
    let a = analyze("The 客服 was rude");
    assert_eq!(a.topics, vec![Topic::Support]);
    assert_eq!(a.sentiment.polarity, Polarity::Negative);
    assert_eq!(
        analyze("Delivery was late again").keywords,
        vec!["delivery".to_string(), "late".to_string()]
    );
    assert_eq!(
        analyze("快递太慢了，包装破损").keywords,
        vec![
            "快递".to_string(),
            "太慢".to_string(),
            "包装".to_string(),
            "破损".to_string()
        ]
    );
}

#[test]
fn the_topic_table_matches_the_enum() {
    assert_eq!(Topic::ALL.len(), lexicon::TOPICS.len());
    for (t, e) in Topic::ALL.iter().zip(lexicon::TOPICS) {
        assert_eq!(t.id(), e.0);
        assert_eq!(Topic::parse(t.id()), Some(*t));
        let json = serde_json::to_string(t).expect("json");
        assert_eq!(json, format!("\"{}\"", e.0));
    }
    assert_eq!(Topic::parse("weather"), None);
}
