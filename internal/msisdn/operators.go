package msisdn

// Operator is a mobile operator (or a brand the top-up aggregators sell
// separately) of one market.
type Operator struct {
	// ID is the stable name products and the operator API use: lower case
	// letters and digits, unique within a market.
	ID string
	// Name is the operator's display name, as top-up events carry it.
	Name string
	// Market is the ISO 3166 code of the operator's country.
	Market string

	// carriers are the English carrier names libphonenumber gives the
	// operator's number ranges. A market's operators never share one.
	carriers []string
	// prefixes are national significant number prefixes of the operator
	// that libphonenumber has no carrier for; they are matched first.
	prefixes []string
}

// operators is the table of the operators top-ups are sold for, per market,
// with the carrier names of libphonenumber's prefix data (v1.8.1). Carriers
// that data still knows but that no longer sell prepaid (Aircel, Tata
// Docomo, Telenor India, Citycell, ...) are left out on purpose: their
// ranges now belong to other operators through porting and mergers, a
// prefix cannot say to whom, and selling airtime for a guessed operator is
// selling airtime the operator will refuse. Such numbers are rejected as
// "unknown_operator" and the app asks the user to pick the operator.
//
// Mobile number portability (every market but Indonesia in practice) makes
// any prefix a guess: a number ported away is refused by the operator we
// guess, which the top-up records as a definite failure and releases.
var operators = []Operator{
	// Indonesia. Tri's 0895-0899 ranges carry no carrier in libphonenumber.
	{ID: "telkomsel", Name: "Telkomsel", Market: "ID", carriers: []string{"Telkomsel"}},
	{ID: "indosat", Name: "Indosat", Market: "ID", carriers: []string{"Indosat Ooredoo Hutchison"}},
	{ID: "xl", Name: "XL Axiata", Market: "ID", carriers: []string{"XL", "AXIS"}},
	{ID: "smartfren", Name: "Smartfren", Market: "ID", carriers: []string{"Smartfren"}},
	{ID: "tri", Name: "Tri", Market: "ID", prefixes: []string{"895", "896", "897", "898", "899"}},

	// Philippines. Globe includes TM; Smart includes TNT and Sun.
	{ID: "globe", Name: "Globe", Market: "PH", carriers: []string{"Globe"}},
	{ID: "smart", Name: "Smart", Market: "PH", carriers: []string{"Smart"}},
	{ID: "dito", Name: "DITO", Market: "PH", carriers: []string{"Dito"}},

	// Malaysia. "Celecom" is a spelling in the data.
	{ID: "celcomdigi", Name: "CelcomDigi", Market: "MY", carriers: []string{"Celcom", "Celecom", "DiGi"}},
	{ID: "maxis", Name: "Maxis", Market: "MY", carriers: []string{"Maxis"}},
	{ID: "umobile", Name: "U Mobile", Market: "MY", carriers: []string{"U Mobile"}},
	{ID: "tunetalk", Name: "Tune Talk", Market: "MY", carriers: []string{"Tune Talk"}},

	// Thailand.
	{ID: "ais", Name: "AIS", Market: "TH", carriers: []string{"AIS"}},
	{ID: "dtac", Name: "dtac", Market: "TH", carriers: []string{"DTAC"}},
	{ID: "truemove", Name: "TrueMove H", Market: "TH", carriers: []string{"True Move"}},

	// Bangladesh. Airtel Bangladesh (016) is part of Robi.
	{ID: "grameenphone", Name: "Grameenphone", Market: "BD", carriers: []string{"Grameenphone"}},
	{ID: "robi", Name: "Robi", Market: "BD", carriers: []string{"Robi"}},
	{ID: "banglalink", Name: "Banglalink", Market: "BD", carriers: []string{"Banglalink"}},
	{ID: "teletalk", Name: "Teletalk", Market: "BD", carriers: []string{"TeleTalk"}},

	// Pakistan. Jazz includes the former Warid (032).
	{ID: "jazz", Name: "Jazz", Market: "PK", carriers: []string{"Jazz"}},
	{ID: "telenor", Name: "Telenor", Market: "PK", carriers: []string{"Telenor"}},
	{ID: "zong", Name: "Zong", Market: "PK", carriers: []string{"Zong"}},
	{ID: "ufone", Name: "Ufone", Market: "PK", carriers: []string{"Ufone"}},

	// India. Vi is the merged Vodafone and Idea.
	{ID: "jio", Name: "Jio", Market: "IN", carriers: []string{"Reliance Jio"}},
	{ID: "airtel", Name: "Airtel", Market: "IN", carriers: []string{"Airtel"}},
	{ID: "vi", Name: "Vi", Market: "IN", carriers: []string{"Vodafone", "Idea"}},
	{ID: "bsnl", Name: "BSNL", Market: "IN", carriers: []string{"BSNL MOBILE"}},
}

// Operators returns the operators of a market (a fresh slice, in table
// order); none for a code that is not one of the seven markets.
func Operators(market string) []Operator {
	var out []Operator
	for _, op := range operators {
		if op.Market == market {
			out = append(out, op)
		}
	}
	return out
}

// OperatorByID returns the operator of a market with that id.
func OperatorByID(market, id string) (Operator, bool) {
	for _, op := range operators {
		if op.Market == market && op.ID == id {
			return op, true
		}
	}
	return Operator{}, false
}

// byPrefix finds the operator of a national significant number by the
// table's own prefixes.
func byPrefix(market, nsn string) (Operator, bool) {
	for _, op := range operators {
		if op.Market != market {
			continue
		}
		for _, p := range op.prefixes {
			if len(nsn) > len(p) && nsn[:len(p)] == p {
				return op, true
			}
		}
	}
	return Operator{}, false
}

// byCarrier finds the operator of a market by libphonenumber's carrier name.
func byCarrier(market, carrier string) (Operator, bool) {
	if carrier == "" {
		return Operator{}, false
	}
	for _, op := range operators {
		if op.Market != market {
			continue
		}
		for _, c := range op.carriers {
			if c == carrier {
				return op, true
			}
		}
	}
	return Operator{}, false
}
